from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from .health import health

admin.site.site_header = "dCMMS Release Governance"
admin.site.site_title = "dCMMS Release Governance"
admin.site.index_title = "Releases, checklists and sign-offs"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("health/", health, name="health"),
]

handler403 = "dcmms_release.security.permission_denied"
handler500 = "dcmms_release.security.server_error"
