from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from orgs.models import Organization


@login_required
def home(request: HttpRequest) -> HttpResponse:
    organizations = Organization.objects.for_user(request.user)
    return render(request, "orgs/home.html", {"organizations": organizations})
