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
      // Outside a modal dialog the page leaves the accessibility tree, #messages included:
      // the dialog gets a live region of its own, beside the content its forms swap.
      if (!dialog.querySelector("[data-live-region]")) {
        const region = document.createElement("p");
        region.className = "visually-hidden";
        region.setAttribute("role", "status");
        region.setAttribute("aria-live", "polite");
        region.dataset.liveRegion = "";
        (dialog.querySelector("article") || dialog).append(region);
      }
      dialog.addEventListener("close", () => {
        dialog.querySelectorAll("input.secret").forEach((input) => { input.value = ""; });
        const newRow = dialog.querySelector("[data-new-row]");
        dialog.remove();
        focusAfterDialog(newRow && document.getElementById(newRow.dataset.newRow));
      });
      dialog.showModal();
      // Without an [autofocus] field Chromium focuses the scrolling <article> itself.
      if (!dialog.contains(document.activeElement) || !document.activeElement.matches(CONTROLS)) {
        const control = firstControl(dialog);
        if (control) control.focus();
      }
    });
  }

  const CONTROLS = "input:not([type=hidden]):not(:disabled), select:not(:disabled), " +
    "textarea:not(:disabled), button:not(:disabled), a[href], summary";

  // The first visible control; of a radio group, the choice that is checked.
  function firstControl(container) {
    for (const control of container.querySelectorAll(CONTROLS)) {
      if (!control.getClientRects().length) continue;
      if (control.type === "radio") {
        const group = container.querySelectorAll(`input[type=radio][name="${CSS.escape(control.name)}"]`);
        return [...group].find((radio) => radio.checked) || control;
      }
      return control;
    }
    return null;
  }

  // The browser gives focus back to what opened the dialog; a token just created takes it
  // instead (its row), and if the opener is gone (the page was refreshed behind the dialog),
  // the page's heading does.
  function focusAfterDialog(newRow) {
    if (newRow) {
      focusOn(newRow.querySelector("a") || newRow);
    } else if (focusIsLost()) {
      const content = document.getElementById("content");
      focusOn(content.querySelector("h1") || content);
    }
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

  // A revealed secret is masked (a password field) until Show; without JavaScript it stays
  // plain text, so it can still be selected and copied.
  function maskSecrets(root) {
    root.querySelectorAll("input[data-masked]").forEach((input) => {
      if (input.dataset.maskWired) return;
      input.dataset.maskWired = "1";
      input.type = "password";
      const toggle = document.querySelector(`[data-show-secret="${CSS.escape(input.id)}"]`);
      if (toggle) toggle.hidden = false;
    });
  }

  document.addEventListener("click", (event) => {
    const toggle = event.target.closest("[data-show-secret]");
    if (!toggle) return;
    const input = document.getElementById(toggle.dataset.showSecret);
    const show = input.type === "password";
    input.type = show ? "text" : "password";
    toggle.textContent = show ? "Hide" : "Show";
    announce(show ? "The token is shown." : "The token is masked.");
  });

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
      // Browsers never copy a selection out of a password field: unmask for the copy only.
      const masked = input.type === "password";
      if (masked) input.type = "text";
      input.select();
      copied = document.execCommand && document.execCommand("copy");
      if (masked) input.type = "password";
    }
    button.textContent = copied ? "Copied" : "Copy";
    const result = copied
      ? "Copied to the clipboard."
      : "Your browser did not allow copying: the token is selected, press Ctrl+C (⌘C).";
    // The reveal's status line is a live region itself (the dialog's, see liveRegion).
    if (status) status.textContent = result;
    else announce(result);
  });

  /* Permission grid: a role fills it in; changing a row makes the permissions custom ------ */

  function gridRows(form) {
    return [...form.querySelectorAll("[data-permission-grid] fieldset[data-resource]")];
  }

  function showNames(row) {
    const chosen = row.querySelector("input[type=radio]:checked");
    const line = row.querySelector("[data-permission-names]");
    if (!line) return;
    const names = chosen ? chosen.value.split(" ").filter(Boolean) : [];
    if (!names.length) {
      line.textContent = "No permission";
      return;
    }
    line.replaceChildren(...names.flatMap((name, index) => {
      const code = document.createElement("code");
      code.textContent = name;
      return index ? [document.createTextNode(" "), code] : [code];
    }));
  }

  // Each row takes the level that grants exactly the role's permissions of its resource.
  function fillGrid(form, granted) {
    gridRows(form).forEach((row) => {
      const radios = [...row.querySelectorAll("input[type=radio]")];
      const level = radios.find((radio) => {
        const names = radio.value.split(" ").filter(Boolean);
        const wanted = radios.flatMap((other) => other.value.split(" ")).filter((name) => granted.has(name));
        const unique = new Set(wanted);
        return names.length === unique.size && names.every((name) => unique.has(name));
      });
      if (level) level.checked = true;
      showNames(row);
    });
  }

  // In the capture phase: the grid is filled in (or the role made custom) before htmx, on the
  // way back up, sends the fields to the edit dialog's preview.
  document.addEventListener("change", (event) => {
    const target = event.target;
    const form = target.form;
    if (!form) return;
    if (target.matches("input[name=role][data-role-permissions]")) {
      fillGrid(form, new Set(target.dataset.rolePermissions.split(" ").filter(Boolean)));
    } else if (target.matches("[data-permission-grid] input[type=radio]")) {
      showNames(target.closest("fieldset[data-resource]"));
      const custom = form.querySelector("input[name=role][value=custom]");
      if (custom && !custom.checked) custom.checked = true;
    }
  }, true);

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

  /* Status messages and announcements: one polite live region ----------------------------- */

  // #messages (base.html) is the page's region; while a modal dialog is open, the dialog's
  // first [data-live-region] (the reveal's copy status comes before the one openDialogs adds).
  function liveRegion() {
    const dialog = document.querySelector("dialog[open]");
    return dialog ? dialog.querySelector("[data-live-region]") : document.getElementById("messages");
  }

  // Read out text that is already visible elsewhere (a test result, a count): in the page's
  // region it goes into a visually hidden line, so the banners shown there stay.
  function announce(text) {
    const region = liveRegion();
    if (!region || !text) return;
    if (region.id !== "messages") {
      region.textContent = text;
      return;
    }
    let echo = region.querySelector(":scope > .live-echo");
    if (!echo) {
      echo = document.createElement("span");
      echo.className = "visually-hidden live-echo";
      region.append(echo);
    }
    echo.textContent = text;
  }

  // Django messages that an HTMX response carried (orgs.middleware.HtmxMessagesMiddleware).
  function showMessages(messages) {
    const region = document.getElementById("messages");
    if (!region) return;
    region.replaceChildren(...messages.map((message) => {
      const banner = document.createElement("p");
      banner.className = `banner banner-${message.level}`;
      banner.textContent = message.text;
      return banner;
    }));
  }

  // The first field a form's answer marks as wrong (aria-invalid, its message through
  // aria-describedby); of a radio group, the choice that is checked.
  function firstInvalid(container) {
    const field = container.querySelector("[aria-invalid=true]:not(:disabled)");
    if (!field || field.type !== "radio") return field;
    const group = container.querySelectorAll(`input[type=radio][name="${CSS.escape(field.name)}"]:not(:disabled)`);
    return [...group].find((radio) => radio.checked) || field;
  }

  function focusIsLost() {
    const active = document.activeElement;
    return !active || active === document.body || !active.isConnected;
  }

  function focusOn(element) {
    if (!element.matches("a[href], button, input, select, textarea, summary, [tabindex]")) {
      element.setAttribute("tabindex", "-1");
    }
    element.focus();
  }

  // The outcome of a dialog's action: the dialog is gone and the page behind it is being
  // refreshed, so focus goes to the message, which no refresh replaces.
  document.addEventListener("messages", (event) => {
    showMessages(event.detail.messages || []);
    const fromDialog = event.target.closest && event.target.closest("dialog");
    const first = document.querySelector("#messages > .banner");
    if (fromDialog && first) focusOn(first);
  });

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
    maskSecrets(root);
    openDialogs(root);
  }

  document.addEventListener("htmx:load", (event) => init(event.detail.elt));
  document.body.addEventListener("close-dialog", closeDialogs);

  // After a swap: an error re-rendered in a dialog's form puts focus on the first field with a
  // problem; focus that the swap took away (it was in the replaced fragment) goes to the new
  // fragment's heading, or the fragment; and a [data-announce] part of what a person's own
  // input brought (a test result, a count) is read out.
  // A fragment that lists errors of fields outside it ([data-error-for], the policy preview)
  // marks those fields, and unmarks the ones it no longer lists.
  function markFieldErrors(target) {
    const form = target.closest("form");
    if (!form) return;
    form.querySelectorAll("[data-marked-invalid]").forEach((field) => {
      field.removeAttribute("aria-invalid");
      field.setAttribute("aria-describedby", field.dataset.describedBefore || "");
      if (!field.dataset.describedBefore) field.removeAttribute("aria-describedby");
      delete field.dataset.markedInvalid;
      delete field.dataset.describedBefore;
    });
    target.querySelectorAll("[data-error-for]").forEach((message) => {
      const field = document.getElementById(message.dataset.errorFor);
      if (!field || field.getAttribute("aria-invalid") === "true") return;
      field.dataset.markedInvalid = "1";
      field.dataset.describedBefore = field.getAttribute("aria-describedby") || "";
      field.setAttribute("aria-invalid", "true");
      field.setAttribute("aria-describedby", `${field.dataset.describedBefore} ${message.id}`.trim());
    });
  }

  document.addEventListener("htmx:afterSettle", (event) => {
    const target = event.detail.elt;
    if (!target.isConnected) return;
    markFieldErrors(target);
    const dialog = target.closest && target.closest("dialog[open]");
    const source = event.detail.requestConfig && event.detail.requestConfig.elt;
    const fromForm = source && source.closest && source.closest("form");
    const submitted = source && source.matches && source.matches("button, [type=submit]");
    if (dialog) {
      // Only what the swap brought: a live preview beside the fields leaves focus alone.
      const focus = firstInvalid(target) || target.querySelector("[role=alert] a, [autofocus]");
      if (focus) focus.focus();
    } else if (fromForm && firstInvalid(target)) {
      firstInvalid(target).focus();
    } else if (submitted && fromForm && firstInvalid(fromForm)) {
      // A submit button whose answer lists errors of fields outside it (Preview impact).
      firstInvalid(fromForm).focus();
    } else if (focusIsLost()) {
      focusOn(target.querySelector("h1, h2") || target);
    }
    if (fromForm) {
      const parts = target.matches("[data-announce]") ? [target] : [];
      parts.push(...target.querySelectorAll("[data-announce]"));
      announce(parts.map((part) => part.textContent.replace(/\s+/g, " ").trim()).join(" "));
    }
  });

  init(document);

  // A full page that answers a form with errors starts on the first field in error (over any
  // autofocus); one that brings a message (saved, deleted) starts on it.
  const pageInvalid = document.querySelector("dialog[open]") ? null : firstInvalid(document);
  const pageMessage = document.querySelector("#messages > .banner");
  if (pageInvalid) pageInvalid.focus();
  else if (pageMessage && focusIsLost()) focusOn(pageMessage);
})();
