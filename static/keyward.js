/* Keyward: the little the console needs beyond htmx. No inline script anywhere (CSP). */
(function () {
  "use strict";

  /* Dialogs ---------------------------------------------------------------------------- */

  // A <dialog data-modal> swapped into the page opens as a modal; closing removes it, so a
  // revealed token does not linger in the page.
  function openDialogs(root) {
    const scope = root && root.querySelectorAll ? root : document;
    const dialogs = scope.matches && scope.matches("dialog[data-modal]") ? [scope] : [];
    scope.querySelectorAll("dialog[data-modal]").forEach((dialog) => dialogs.push(dialog));
    dialogs.forEach((dialog) => {
      if (dialog.open || dialog.dataset.wired) return;
      dialog.dataset.wired = "1";
      dialog.addEventListener("close", () => {
        dialog.querySelectorAll("input.secret").forEach((input) => { input.value = ""; });
        dialog.remove();
      });
      dialog.showModal();
    });
  }

  function closeDialogs() {
    document.querySelectorAll("dialog[open]").forEach((dialog) => dialog.close());
  }

  document.addEventListener("click", (event) => {
    const closer = event.target.closest("[data-close-dialog]");
    if (closer && closer.closest("dialog[open]")) {
      event.preventDefault();
      closer.closest("dialog").close();
    }
  });

  // A click on the backdrop (outside the dialog's article) closes it, like Escape.
  document.addEventListener("mousedown", (event) => {
    if (event.target instanceof HTMLDialogElement && event.target.open) {
      const box = event.target.getBoundingClientRect();
      const inside = event.clientX >= box.left && event.clientX <= box.right &&
        event.clientY >= box.top && event.clientY <= box.bottom;
      if (!inside) event.target.close();
    }
  });

  // Links styled as buttons answer the Space key as buttons do.
  document.addEventListener("keydown", (event) => {
    if (event.key === " " && event.target.matches && event.target.matches("a[role=button]")) {
      event.preventDefault();
      event.target.click();
    }
  });

  /* Copy to clipboard ------------------------------------------------------------------ */

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const input = document.getElementById(button.dataset.copy);
    const status = document.getElementById(input.getAttribute("aria-describedby"));
    input.focus();
    input.select();
    let copied = false;
    try {
      await navigator.clipboard.writeText(input.value);
      copied = true;
    } catch (error) {
      copied = document.execCommand && document.execCommand("copy");
    }
    button.textContent = copied ? "Copied" : "Copy";
    if (status) {
      status.textContent = copied
        ? "Copied to the clipboard."
        : "Your browser did not allow copying: the token is selected, press Ctrl+C (⌘C).";
    }
  });

  /* Permission groups: "All" checkbox per resource ------------------------------------- */

  function syncSelectAll(group) {
    const all = group.querySelector("input[data-select-all]");
    if (!all) return;
    const boxes = [...group.querySelectorAll("input[name=permissions]:not(:disabled)")];
    const checked = boxes.filter((box) => box.checked).length;
    all.checked = checked > 0 && checked === boxes.length;
    all.indeterminate = checked > 0 && checked < boxes.length;
  }

  function wireSelectAll(root) {
    root.querySelectorAll("input[data-select-all]").forEach((all) => {
      all.closest("label").hidden = false;
      syncSelectAll(all.closest("fieldset"));
    });
  }

  document.addEventListener("change", (event) => {
    const target = event.target;
    if (target.matches("input[data-select-all]")) {
      const group = target.closest("fieldset");
      group.querySelectorAll("input[name=permissions]:not(:disabled)").forEach((box) => {
        box.checked = target.checked;
      });
      // One change event for the group, so a live preview updates once.
      group.dispatchEvent(new Event("change", { bubbles: true }));
    } else if (target.matches("input[name=permissions]")) {
      syncSelectAll(target.closest("fieldset"));
    }
  });

  /* Times: the server writes UTC; show the viewer's zone, keep UTC on hover -------------- */

  const localFormat = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    hourCycle: "h23", timeZoneName: "short",
  });

  function localizeTimes(root) {
    root.querySelectorAll("time[datetime]:not([data-local])").forEach((element) => {
      const moment = new Date(element.getAttribute("datetime"));
      if (Number.isNaN(moment.getTime())) return;
      const parts = Object.fromEntries(localFormat.formatToParts(moment).map((p) => [p.type, p.value]));
      element.textContent = `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute} ${parts.timeZoneName}`;
      element.dataset.local = "1";
    });
  }

  /* Problems: an HTMX request that failed gets a message, not silence -------------------- */

  function showProblem(text) {
    const banner = document.getElementById("problem");
    if (!banner) return;
    banner.textContent = text;
    banner.hidden = false;
  }

  document.addEventListener("htmx:responseError", (event) => {
    const status = event.detail.xhr.status;
    closeDialogs();
    if (status === 403) {
      showProblem("You may not do that. Your role may have changed; reload the page.");
    } else if (status === 404) {
      showProblem("That no longer exists, or you may not see it. Reload the page.");
    } else {
      showProblem(`Something went wrong on our side (error ${status}). Nothing was changed; try again.`);
    }
  });

  document.addEventListener("htmx:sendError", () => {
    showProblem("Keyward could not be reached. Check your connection and try again.");
  });

  document.addEventListener("htmx:beforeRequest", () => {
    const banner = document.getElementById("problem");
    if (banner) banner.hidden = true;
  });

  /* Wiring ------------------------------------------------------------------------------ */

  function init(root) {
    localizeTimes(root);
    wireSelectAll(root);
    openDialogs(root);
  }

  document.addEventListener("htmx:load", (event) => init(event.detail.elt));
  document.body.addEventListener("close-dialog", closeDialogs);

  // After an error re-renders a dialog's form, put focus on the first field with a problem.
  document.addEventListener("htmx:afterSettle", (event) => {
    const target = event.detail.elt;
    const dialog = target.closest && target.closest("dialog[open]");
    if (dialog) {
      const focus = dialog.querySelector("[aria-invalid=true], [role=alert] a, [autofocus]");
      if (focus) focus.focus();
    } else if (target.id === "token-detail" && document.activeElement === document.body) {
      const heading = document.getElementById("token-title");
      if (heading) heading.focus();
    }
  });

  init(document);
})();
