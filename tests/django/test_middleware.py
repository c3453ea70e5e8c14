"""spa_version.django.VersionMiddleware through Django's own test clients (sync and async)."""

from __future__ import annotations

import json
from typing import NoReturn
from unittest import mock

from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from spa_version.assets import load_script
from spa_version.django.conf import settings_host
from spa_version.release import Release
from tests.support.django_tests import SpaVersionTestCase, bump, fresh_settings, header_value

UNRELEASED = "0; label=unreleased; policy=next-navigation"
UNRELEASED_RECORD = {
    "epoch": 0,
    "label": "unreleased",
    "policy": "next-navigation",
    "min_compatible": None,
    "created_at": "",
    "note": None,
}


class StampingTests(SpaVersionTestCase):
    def test_sync_view_is_stamped(self) -> None:
        """A sync view's response carries the current release's header."""
        release = self.bump("sync-1")
        response = self.client.get("/")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["X-SPA-Version"], header_value(release))

    async def test_async_view_is_stamped(self) -> None:
        """An async view, through the async client, is stamped too."""
        release = self.bump("async-1", policy="immediate")
        response = await self.async_client.get("/api/async/")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["X-SPA-Version"], header_value(release))

    def test_server_timing_repeats_the_version(self) -> None:
        """The same value as a Server-Timing metric: what a static page's script reads from its
        navigation entry (docs/js.md, "The baseline")."""
        release = self.bump("timed")
        response = self.client.get("/")
        self.assertEqual(response["Server-Timing"], f'spa-version;desc="{header_value(release)}"')

    def test_server_timing_goes_where_a_page_reads_it(self) -> None:
        """The metric is set on HTML documents, beside the page's own metrics, and on a 304
        (its fields replace the stored page's); not on an API's JSON, which no navigation
        entry describes (spa_version.django.stamping.Stamping.stamp)."""
        release = self.bump("timed")
        metric = f'spa-version;desc="{header_value(release)}"'
        timed = self.client.get("/timed/")
        self.assertEqual(timed["Server-Timing"], f'db;dur=53, app;desc="render", {metric}')
        self.assertEqual(self.client.get("/not-modified/")["Server-Timing"], metric)
        api = self.client.get("/submit/")
        self.assertEqual(api["Content-Type"], "application/json")
        self.assertEqual(api["X-SPA-Version"], header_value(release))
        self.assertFalse(api.has_header("Server-Timing"))

    def test_the_unreleased_value_before_the_first_bump(self) -> None:
        """A store read fine that holds no release: epoch 0, labelled ``unreleased``, in the
        header and the Server-Timing metric (docs/protocol.md, "Before the first release");
        the first bump replaces it."""
        response = self.client.get("/")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["X-SPA-Version"], UNRELEASED)
        self.assertEqual(response["Server-Timing"], f'spa-version;desc="{UNRELEASED}"')
        release = self.bump("first")
        self.get_once_stamped(release)  # the listener thread hears of the bump asynchronously

    async def test_the_unreleased_value_names_the_declared_build(self) -> None:
        """With ``BUILD`` declared, the unreleased value's label is the build (async client)."""
        self.use_settings(BUILD="b-2026")
        response = await self.async_client.get("/api/async/")
        self.assertEqual(response["X-SPA-Version"], "0; label=b-2026; policy=next-navigation")

    def test_bump_is_picked_up_without_restart(self) -> None:
        """A bump reaches the running process: its responses carry the new release, no restart."""
        first = self.bump("one")
        self.assertEqual(self.client.get("/").headers["X-SPA-Version"], header_value(first))
        second = self.bump("two")
        self.assertGreater(second.epoch, first.epoch)
        self.get_once_stamped(second)  # the listener thread hears of the bump asynchronously

    def test_header_replaces_one_set_by_the_view(self) -> None:
        """A header set by the view is replaced, never duplicated."""
        release = self.bump("replace")
        response = self.client.get("/preset/")
        self.assertEqual(response.headers["X-SPA-Version"], header_value(release))

    def test_redirect_from_common_middleware_is_stamped(self) -> None:
        """Answers from middleware below ours (APPEND_SLASH redirects) are stamped."""
        release = self.bump("redirect")
        response = self.client.get("/api/async")
        self.assertEqual(response.status_code, 301)
        self.assertEqual(response["X-SPA-Version"], header_value(release))

    def test_template_tags_render_meta_and_script(self) -> None:
        """{% spa_version_meta %} renders the header value, {% spa_version_script %} the script tag."""
        release = self.bump("tags-1")
        html = self.client.get("/").content.decode()
        self.assertIn(f'<meta name="spa-version" content="{header_value(release)}">', html)
        self.assertIn('<script src="/__spa-version.js" defer></script>', html)

    def test_template_meta_tag_before_first_bump_is_the_unreleased_value(self) -> None:
        """Before any release the meta tag renders the unreleased value: the page's baseline is
        epoch 0, and the first release is news to it."""
        html = self.client.get("/").content.decode()
        self.assertIn(f'<meta name="spa-version" content="{UNRELEASED}">', html)

    def test_custom_header_name_and_script_path(self) -> None:
        """HEADER_NAME and SCRIPT_PATH are honoured by the middleware and the tags."""
        self.use_settings(HEADER_NAME="X-Deploy", SCRIPT_PATH="/static/spa.js")
        release = self.bump("custom")
        response = self.client.get("/")
        self.assertEqual(response["X-Deploy"], header_value(release))
        self.assertFalse(response.has_header("X-SPA-Version"))
        self.assertIn('<script src="/static/spa.js" defer></script>', response.content.decode())


class EndpointTests(SpaVersionTestCase):
    def test_endpoint_returns_the_current_record(self) -> None:
        """GET /__spa-version returns the release as JSON, uncached, stamped."""
        release = self.bump("endpoint", note="hello")
        response = self.client.get("/__spa-version")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Type"], "application/json")
        self.assertEqual(response["Cache-Control"], "no-store")
        body = json.loads(response.content)
        self.assertEqual((body["epoch"], body["label"], body["note"]), (release.epoch, "endpoint", "hello"))
        self.assertEqual(response["X-SPA-Version"], header_value(release))

    async def test_endpoint_async_before_first_bump_is_the_unreleased_record(self) -> None:
        """Before any bump the endpoint answers the unreleased record, epoch 0 (async client)."""
        response = await self.async_client.get("/__spa-version")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(json.loads(response.content), UNRELEASED_RECORD)
        self.assertEqual(response["X-SPA-Version"], UNRELEASED)

    def test_endpoint_refuses_post(self) -> None:
        """Other methods than GET/HEAD get 405 with Allow."""
        response = self.client.post("/__spa-version")
        self.assertEqual(response.status_code, 405)
        self.assertEqual(response["Allow"], "GET, HEAD")

    def test_endpoint_can_be_turned_off(self) -> None:
        """ENDPOINT=None leaves the path to Django (404 here)."""
        with override_settings(SPA_VERSION={**self.spa, "ENDPOINT": None}):
            self.assertEqual(self.client.get("/__spa-version").status_code, 404)

    def test_script_is_served(self) -> None:
        """/__spa-version.js serves the shipped script-tag build, with an ETag for a cheap 304."""
        asset = load_script()
        assert asset is not None, "the package ships spa_version/static/spa-version.js"
        response = self.client.get("/__spa-version.js")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.content, asset.body)
        self.assertTrue(response["Content-Type"].startswith("text/javascript"))
        again = self.client.get("/__spa-version.js", headers={"If-None-Match": asset.etag.decode()})
        self.assertEqual(again.status_code, 304)


class EnforcementTests(SpaVersionTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.old = self.bump("old")
        self.current = self.bump("new", min_compatible="current")

    def test_stale_client_post_gets_409_with_reload(self) -> None:
        """A POST from a client older than min_compatible is refused with 409 and X-SPA-Reload."""
        stale = str(self.old.epoch)  # a tab opened before the bump
        response = self.client.post("/submit/", headers={"X-SPA-Client-Version": stale})
        self.assertEqual(response.status_code, 409)
        self.assertEqual(response["X-SPA-Reload"], "*")
        body = json.loads(response.content)
        self.assertEqual((body["error"], body["current"]["epoch"]), ("stale-client", self.current.epoch))
        self.assertEqual(response["X-SPA-Version"], header_value(self.current))

    async def test_current_client_post_passes_async(self) -> None:
        """A POST from a current client reaches the view (async client)."""
        current = str(self.current.epoch)
        response = await self.async_client.post("/submit/", headers={"X-SPA-Client-Version": current})
        self.assertEqual(response.status_code, 200)

    def test_get_and_clients_without_epoch_are_never_refused(self) -> None:
        """GET is not enforced by default, and a missing or malformed epoch is never refused."""
        self.assertEqual(self.client.get("/", headers={"X-SPA-Client-Version": "1"}).status_code, 200)
        self.assertEqual(self.client.post("/submit/").status_code, 200)
        self.assertEqual(
            self.client.post("/submit/", headers={"X-SPA-Client-Version": "x1"}).status_code, 200
        )

    def test_client_epoch_lists_follow_the_protocol_rule(self) -> None:
        """A joined header ("n, n", as XHR sends one set twice) counts its highest valid epoch."""
        old, now = self.current.epoch - 1, self.current.epoch
        for value, status in [
            (f"{old}, {old}", 409),
            (f" {old}\t", 409),
            (f"junk, {old}", 409),
            (f"{old}, {now}", 200),
            (f"{now}, {old}", 200),
        ]:
            with self.subTest(value=value):
                response = self.client.post("/submit/", headers={"X-SPA-Client-Version": value})
                self.assertEqual(response.status_code, status)

    async def test_client_epoch_lists_follow_the_protocol_rule_async(self) -> None:
        """The same rule under the async stack."""
        old = self.current.epoch - 1
        response = await self.async_client.post("/submit/", headers={"X-SPA-Client-Version": f"{old}, {old}"})
        self.assertEqual(response.status_code, 409)

    def test_enforce_settings_are_read_at_access_time(self) -> None:
        """override_settings of ENFORCE_METHODS and RELOAD_LOCATION applies to the next request."""
        with override_settings(SPA_VERSION={**self.spa, "ENFORCE_METHODS": "*", "RELOAD_LOCATION": "/home"}):
            response = self.client.get("/", headers={"X-SPA-Client-Version": "1"})
            self.assertEqual(response.status_code, 409)
            self.assertEqual(response["X-SPA-Reload"], "/home")
        with override_settings(SPA_VERSION={**self.spa, "ENFORCE_EXCLUDE": ["/submit/"]}):
            response = self.client.post("/submit/", headers={"X-SPA-Client-Version": "1"})
            self.assertEqual(response.status_code, 200)


class CorsTests(SpaVersionTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.bump("cors")

    def test_header_exposed_when_cors_allows_origin(self) -> None:
        """With Access-Control-Allow-Origin, the header name is added to the expose list."""
        response = self.client.get("/cors/", {"origin": "http://a.example"})
        # X-SPA-Reload goes wherever X-SPA-Version goes.
        self.assertEqual(response["Access-Control-Expose-Headers"], "X-SPA-Version, X-SPA-Reload")
        self.assertEqual(response["Access-Control-Allow-Origin"], "http://a.example")

    def test_expose_list_is_merged_not_replaced(self) -> None:
        """An existing expose list keeps its entries and gains ours once."""
        response = self.client.get("/cors/", {"origin": "*", "expose": "X-Request-Id, ETag"})
        self.assertEqual(
            response["Access-Control-Expose-Headers"], "X-Request-Id, ETag, X-SPA-Version, X-SPA-Reload"
        )

    def test_expose_list_never_duplicates(self) -> None:
        """A list that already names the header (any case) is left as it is."""
        response = self.client.get("/cors/", {"origin": "*", "expose": "x-spa-reload, x-spa-version"})
        self.assertEqual(response["Access-Control-Expose-Headers"], "x-spa-reload, x-spa-version")

    def test_no_expose_without_cors(self) -> None:
        """A same-origin response gets no expose header."""
        self.assertFalse(self.client.get("/cors/").has_header("Access-Control-Expose-Headers"))

    def test_expose_can_be_turned_off(self) -> None:
        """EXPOSE_HEADER=False leaves CORS headers alone."""
        with override_settings(SPA_VERSION={**self.spa, "EXPOSE_HEADER": False}):
            response = self.client.get("/cors/", {"origin": "*"})
            self.assertFalse(response.has_header("Access-Control-Expose-Headers"))
            self.assertTrue(response.has_header("X-SPA-Version"))


class SettingsTests(SpaVersionTestCase):
    def test_override_settings_switches_store(self) -> None:
        """Settings are read at access time: two overrides, two stores, two versions."""
        first, second = fresh_settings(), fresh_settings()
        bump(first, "first")
        bump(second, "second-a")
        bump(second, "second-b")
        with override_settings(SPA_VERSION=first):
            self.assertIn("label=first", self.client.get("/")["X-SPA-Version"])
        with override_settings(SPA_VERSION=second):
            self.assertIn("label=second-b", self.client.get("/")["X-SPA-Version"])

    def test_a_late_version_of_replaced_settings_never_stamps(self) -> None:
        """After the settings change, a version still reaching the host they replaced (a
        pub/sub message in flight) is not stamped: requests get the new settings' one,
        before and after the new host's first request."""
        first, second = fresh_settings(), fresh_settings()
        epoch = bump(first, "first").epoch
        bump(second, "second")
        with override_settings(SPA_VERSION=first):
            self.assertIn("label=first", self.client.get("/")["X-SPA-Version"])
            replaced = settings_host()
        with override_settings(SPA_VERSION=second):
            self.assertTrue(replaced.current.offer(Release(epoch + 1, "late")))
            self.assertIn("label=second", self.client.get("/")["X-SPA-Version"])
            self.assertTrue(replaced.current.offer(Release(epoch + 2, "later")))
            self.assertIn("label=second", self.client.get("/")["X-SPA-Version"])

    def test_fallback_is_stamped_until_the_store_has_a_release(self) -> None:
        """FALLBACK stamps a provisional value that the first real release replaces."""
        self.use_settings(FALLBACK="1; label=boot")
        self.assertTrue(self.client.get("/")["X-SPA-Version"].startswith("1; label=boot"))
        release = self.bump("real")
        self.get_once_stamped(release)  # the listener thread hears of the bump asynchronously

    def test_bad_settings_raise_improperly_configured(self) -> None:
        """A typo or a bad value is a clear ImproperlyConfigured naming the key."""
        cases = [
            ({"URLL": "redis://x"}, "unknown key"),
            ({"URL": "http://x"}, "'URL'"),
            ({"URL": "redis://127.0.0.1:abc/0"}, "'URL'"),
            ({"URL": "redis+sentinel://127.0.0.1:26379"}, "'URL'"),
            ({"APP": "bad app"}, "'APP'"),
            ({"HEADER_NAME": "X Bad"}, "'HEADER_NAME'"),
            ({"ENDPOINT": "no-slash"}, "'ENDPOINT'"),
            ({"ENFORCE_METHODS": "POST"}, "'ENFORCE_METHODS'"),
            ({"FALLBACK": "zero"}, "'FALLBACK'"),
            ({"RESYNC_INTERVAL": 0}, "'RESYNC_INTERVAL'"),
            ({"RELOAD_LOCATION": "/x\r\nSet-Cookie: a"}, "'RELOAD_LOCATION'"),
            ({"BUILD": "bad label!"}, "'BUILD'"),
            ({"DRAIN_GRACE": -1}, "'DRAIN_GRACE'"),
            ({"HEARTBEAT_INTERVAL": 0}, "'HEARTBEAT_INTERVAL'"),
        ]
        from spa_version.django.middleware import VersionMiddleware

        for spa, needle in cases:
            with (
                self.subTest(spa=spa),
                override_settings(SPA_VERSION=spa),
                self.assertRaisesMessage(ImproperlyConfigured, needle),
            ):
                VersionMiddleware(lambda request: None)  # type: ignore[arg-type,return-value]

    def test_a_store_that_cannot_be_opened_never_fails_a_request(self) -> None:
        """Opening the store raising (a fault past validation) is logged once, and every
        request is served without the header, never a 500 (docs/django.md)."""
        self.use_settings()

        def broken(options: object) -> NoReturn:
            raise RuntimeError("store code fault")

        with (
            mock.patch("spa_version.options.Options.open_store", broken),
            self.assertLogs("spa_version", "ERROR") as logs,
        ):
            for _ in range(3):
                response = self.client.get("/")
                self.assertEqual(response.status_code, 200)
                self.assertNotIn("X-SPA-Version", response)
        self.assertEqual(len([r for r in logs.records if "cannot open the store" in r.getMessage()]), 1)


class CapabilityTests(SpaVersionTestCase):
    def test_sync_and_async_capable_like_middleware_mixin(self) -> None:
        """With an async get_response it is a coroutine function (Django adds no thread hop); else sync."""
        from asgiref.sync import iscoroutinefunction
        from django.http import HttpRequest, HttpResponse

        from spa_version.django.middleware import VersionMiddleware

        async def async_view(request: HttpRequest) -> HttpResponse:
            return HttpResponse("async")

        self.assertTrue(VersionMiddleware.sync_capable and VersionMiddleware.async_capable)
        self.assertTrue(iscoroutinefunction(VersionMiddleware(async_view)))
        self.assertFalse(iscoroutinefunction(VersionMiddleware(lambda request: HttpResponse("sync"))))

    def test_head_endpoint_and_script_tag_off(self) -> None:
        """HEAD on the endpoint answers like GET; SCRIPT_PATH=None renders no script tag."""
        release = self.bump("head")
        head = self.client.head("/__spa-version")
        self.assertEqual(head.status_code, 200)
        self.assertEqual(head["X-SPA-Version"], header_value(release))
        with override_settings(SPA_VERSION={**self.spa, "SCRIPT_PATH": None}):
            self.assertNotIn("<script src=", self.client.get("/").content.decode())
