"""Load shedding (dcmms_release/shedding.py, issue #8): at most SHED_MAX_IN_FLIGHT requests at
once per process, 503 with Retry-After for a request that gets no slot in time or that waited
too long at the proxy (X-Request-Start); /health/ and static files exempt; a refused write
writes nothing."""

import threading
import time

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse

from checklist.admin_version import VERSION_FIELD, version_token
from checklist.choices import ItemKind, ItemStatus
from dcmms_release.shedding import LoadSheddingMiddleware, queue_age
from tests.factories import ItemFactory

RF = RequestFactory()


@pytest.fixture
def shed(settings):
    """A middleware with one slot and a 50 ms wait, around an inner view the test controls."""
    settings.SHED_MAX_IN_FLIGHT = 1
    settings.SHED_QUEUE_TIMEOUT_MS = 50
    settings.SHED_MAX_QUEUE_AGE_MS = 2000
    settings.SHED_RETRY_AFTER_SECONDS = 5

    def build(view=None):
        return LoadSheddingMiddleware(view or (lambda request: HttpResponse("served")))

    return build


class Blocking:
    """An inner view that holds its slot until released, and counts who got in."""

    def __init__(self):
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls: list[str] = []

    def __call__(self, request):
        self.calls.append(request.path)
        if request.path == "/slow/":
            self.entered.set()
            self.release.wait(5)
        return HttpResponse("served")


def _hold_slot(middleware, view: Blocking) -> tuple[threading.Thread, dict]:
    answer: dict = {}
    thread = threading.Thread(target=lambda: answer.setdefault("r", middleware(RF.get("/slow/"))))
    thread.start()
    assert view.entered.wait(5)
    return thread, answer


def test_shedding_answers_503_with_retry_after_when_no_slot_frees_in_time(shed):
    view = Blocking()
    middleware = shed(view)
    holder, answer = _hold_slot(middleware, view)
    try:
        started = time.monotonic()
        refused = middleware(RF.get("/admin/"))
        waited = time.monotonic() - started
    finally:
        view.release.set()
        holder.join(5)

    assert refused.status_code == 503
    assert refused["Retry-After"] == "5"
    assert refused["Content-Type"].startswith("text/plain")
    assert refused.content.decode() == "The portal is busy. Please try again in a few seconds.\n"
    assert "no-store" in refused["Cache-Control"]
    assert 0.04 <= waited < 2  # it waited for a slot, briefly, then gave up
    assert view.calls == ["/slow/"]  # the refused request never reached the view
    assert answer["r"].status_code == 200  # the admitted one ran to its end


def test_shedding_serves_a_waiting_request_when_a_slot_frees_in_time(shed, settings):
    view = Blocking()
    middleware = shed(view)
    middleware.queue_timeout = 5.0
    holder, answer = _hold_slot(middleware, view)
    threading.Timer(0.1, view.release.set).start()

    served = middleware(RF.get("/admin/"))
    holder.join(5)

    assert served.status_code == 200
    assert answer["r"].status_code == 200
    assert view.calls == ["/slow/", "/admin/"]


def test_shedding_never_runs_more_requests_at_once_than_the_bound_when_threads_crowd(settings):
    settings.SHED_MAX_IN_FLIGHT = 2
    settings.SHED_QUEUE_TIMEOUT_MS = 60
    lock, state = threading.Lock(), {"now": 0, "most": 0}

    def view(request):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return HttpResponse("served")

    middleware = LoadSheddingMiddleware(view)
    statuses: list[int] = []
    start = threading.Barrier(12)

    def client():
        start.wait(5)
        statuses.append(middleware(RF.get("/admin/")).status_code)

    threads = [threading.Thread(target=client) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert state["most"] == 2
    assert sorted(set(statuses)) == [200, 503]  # some served, the rest shed
    assert statuses.count(200) >= 2
    # Once the crowd is gone, every slot is free again.
    assert [middleware(RF.get("/admin/")).status_code for _ in range(3)] == [200, 200, 200]


@pytest.mark.parametrize("path", ["/health/", "/static/admin/css/base.css"])
def test_shedding_lets_health_and_static_files_through_when_every_slot_is_taken(shed, path):
    view = Blocking()
    middleware = shed(view)
    holder, _ = _hold_slot(middleware, view)
    try:
        response = middleware(RF.get(path, HTTP_X_REQUEST_START="t=1"))
    finally:
        view.release.set()
        holder.join(5)

    assert response.status_code == 200
    assert path in view.calls


@pytest.mark.parametrize(
    "stamp",
    [
        lambda now: f"t={int((now - 5) * 1000)}",  # milliseconds (Heroku)
        lambda now: f"t={int((now - 5) * 1_000_000)}",  # microseconds (Apache, New Relic)
        lambda now: f"t={now - 5:.3f}",  # seconds with milliseconds (nginx ${msec})
        lambda now: f"{int((now - 5) * 1000)}",  # without the t=
    ],
    ids=["ms", "us", "s", "bare"],
)
def test_shedding_refuses_at_once_when_the_request_waited_too_long_at_the_proxy(shed, stamp):
    view = Blocking()
    middleware = shed(view)  # every slot is free: the age alone refuses it

    response = middleware(RF.get("/admin/", HTTP_X_REQUEST_START=stamp(time.time())))

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert view.calls == []


@pytest.mark.parametrize("header", ["t=garbage", "t=", "t=-5", "t=nan", ""])
def test_shedding_ignores_the_proxy_stamp_when_it_is_unreadable(shed, header):
    view = Blocking()
    response = shed(view)(RF.get("/admin/", HTTP_X_REQUEST_START=header))

    assert response.status_code == 200
    assert view.calls == ["/admin/"]


def test_shedding_serves_a_request_that_waited_briefly_at_the_proxy(shed):
    now = time.time()
    request = RF.get("/admin/", HTTP_X_REQUEST_START=f"t={int((now - 0.2) * 1000)}")

    assert 0.15 < queue_age(request, now) < 0.25
    assert shed()(request).status_code == 200


def test_shedding_bounds_nothing_when_max_in_flight_is_zero(shed, settings):
    settings.SHED_MAX_IN_FLIGHT = 0
    view = Blocking()
    middleware = shed(view)
    holder, answer = _hold_slot(middleware, view)
    try:
        response = middleware(RF.get("/admin/"))
    finally:
        view.release.set()
        holder.join(5)

    assert response.status_code == 200
    assert answer["r"].status_code == 200


def test_shedding_comes_before_sessions_authentication_and_views_when_configured():
    middleware = settings.MIDDLEWARE
    position = middleware.index("dcmms_release.shedding.LoadSheddingMiddleware")
    assert position < middleware.index("django.contrib.sessions.middleware.SessionMiddleware")
    assert position < middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    assert position < middleware.index("simple_history.middleware.HistoryRequestMiddleware")


# ---------------------------------------------------------------- through the whole stack
def _item_form(item) -> dict:
    return {
        "release": item.release_id,
        "section": item.section_id,
        "order": 3,
        "kind": ItemKind.METRIC,
        "text": item.text,
        "status": ItemStatus.IN_PROGRESS,
        "target_op": "<",
        "target_value": "200",
        "target_unit": "ms",
        "actual_label": "Actual",
        "actual_value": "180",
        "actual_unit": "ms",
        VERSION_FIELD: version_token(item),
    }


@pytest.mark.django_db
def test_shedding_writes_nothing_when_a_signed_in_save_is_refused(admin_client, settings):
    settings.SHED_MAX_QUEUE_AGE_MS = 1000
    item = ItemFactory(metric=True, text="API p95 latency")
    url = reverse("admin:checklist_item_change", args=[item.pk])
    records = item.history.count()
    late = f"t={int((time.time() - 3) * 1000)}"

    refused = admin_client.post(url, _item_form(item), HTTP_X_REQUEST_START=late)

    assert refused.status_code == 503
    item.refresh_from_db()
    assert (item.status, item.actual_value) == (ItemStatus.NOT_STARTED, None)
    assert item.history.count() == records

    saved = admin_client.post(url, _item_form(item))  # the same save, not refused, completes

    assert saved.status_code == 302
    item.refresh_from_db()
    assert (item.status, item.target_met) == (ItemStatus.IN_PROGRESS, True)
    assert item.history.count() == records + 1


@pytest.mark.django_db
def test_shedding_answers_health_when_the_proxy_says_the_request_is_old(client):
    old = f"t={int((time.time() - 60) * 1000)}"
    health = client.get("/health/", HTTP_X_REQUEST_START=old)
    assert health["Content-Type"] == "application/json"  # the health check's own answer
    assert client.get("/admin/login/", HTTP_X_REQUEST_START=old).status_code == 503
