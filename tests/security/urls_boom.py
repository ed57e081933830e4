"""The project's URLs plus one view that fails, to exercise the generic error page."""

from django.urls import path

from dcmms_release.urls import handler403, handler500  # noqa: F401
from dcmms_release.urls import urlpatterns as project_urls


def boom(request):
    raise RuntimeError("database password is hunter2")  # must never reach the page


urlpatterns = [*project_urls, path("boom/", boom)]
