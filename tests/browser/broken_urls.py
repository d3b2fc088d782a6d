"""The console's URLs and one view that fails, to see the development 500 page in a browser."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import urlpatterns as console_urlpatterns


def broken(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug, on purpose")


urlpatterns = [path("broken/", broken), *console_urlpatterns]
