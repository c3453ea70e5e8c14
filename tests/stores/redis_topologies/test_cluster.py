"""``redis+cluster://`` against 3 real masters made by ``redis-cli --cluster create``
(docs/redis.md, "Cluster")."""

from __future__ import annotations

import re
import shlex
import uuid
from collections.abc import Iterator

import pytest
import redis as sync_redis

from spa_version.stores import open_store
from tests.support.epochs import bumped_epoch
from tests.support.redis_faults import PING_INTERVAL, PING_TIMEOUT, SLACK, Traffic, serve
from tests.support.redis_topologies import APP, DOC, ClusterSetup, cluster_setup, documented_acl_lines
from tests.support.servers import run_cli

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterSetup]:
    with cluster_setup() as setup:
        yield setup


def app_on_another_node(cluster: ClusterSetup) -> str:
    """An app name whose slot is not owned by the first node (the one the URL names)."""
    for _ in range(200):  # bounded: two thirds of names qualify
        name = f"c-{uuid.uuid4().hex[:8]}"
        if cluster.owner_port(f"spa-version:{{{name}}}:history") != cluster.nodes[0].port:
            return name
    raise AssertionError("no app name hashed to another node")


def test_keys_and_channel_share_one_slot(cluster: ClusterSetup, app_name: str) -> None:
    """The hash tag puts every key and the channel of an app on the same master."""
    names = [f"spa-version:{{{app_name}}}:{part}" for part in ("epoch", "history", "bump")]
    assert len({cluster.owner_port(name) for name in names}) == 1


def test_bump_and_pubsub_across_the_cluster(cluster: ClusterSetup) -> None:
    """CLI bumps through one startup node reach an app whose slot lives elsewhere, via pub/sub."""
    app = app_on_another_node(cluster)
    url = cluster.url(cluster.nodes[0], ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT)
    env = {"SPA_VERSION_URL": url, "SPA_VERSION_APP": app}
    first = bumped_epoch(run_cli("bump", "--json", "cluster-1", env=env))
    with (
        serve(url, app, resync_interval=60, startup_timeout=5) as (middleware, server),
        Traffic(server.url) as tr,
    ):
        tr.wait_for_epoch(first, timeout=10)
        last = first
        for n in (2, 3):
            epoch = bumped_epoch(run_cli("bump", "--json", f"cluster-{n}", env=env))
            assert epoch > last
            # resync is 60 s: only the subscription can deliver this in time.
            tr.wait_for_epoch(epoch, timeout=SLACK + 2)
            last = epoch
        assert tr.failures == []
        listener = middleware.listener
        assert listener is not None and listener.failures == 0, listener.last_error if listener else None
    history = run_cli("history", "--json", env=env)
    assert history.returncode == 0 and "cluster-3" in history.stdout, history.stderr


async def test_store_api_on_the_cluster(cluster: ClusterSetup, app_name: str) -> None:
    """get, bump, history and min_compatible checks run as single-slot commands on the cluster."""
    store = open_store(cluster.url(), app=app_name)
    try:
        assert await store.get() is None
        one = await store.bump("a")
        two = await store.bump("b", min_compatible="current")
        assert one.release.epoch < two.release.epoch == two.release.min_compatible
        assert [r.label for r in await store.history()] == ["b", "a"]
        current = await store.get()
        assert current is not None and current.label == "b"
    finally:
        await store.aclose()


def test_documented_acls_work_on_the_cluster(cluster: ClusterSetup) -> None:
    """docs/redis.md's users plus its cluster rules: the deploy user bumps, the web user follows."""
    extra = re.findall(r"```acl-cluster\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(extra) == 1
    for node in cluster.nodes:
        admin = sync_redis.Redis(port=node.port)
        try:
            for line in documented_acl_lines():
                admin.execute_command(*shlex.split(line), *extra[0].split())
        finally:
            admin.close()
    hosts = ",".join(f"127.0.0.1:{node.port}" for node in cluster.nodes)
    params = f"ping_interval={PING_INTERVAL}&ping_timeout={PING_TIMEOUT}"
    web = f"redis+cluster://spa-web:web-secret@{hosts}?{params}"
    env = {"SPA_VERSION_URL": f"redis+cluster://spa-deploy:deploy-secret@{hosts}", "SPA_VERSION_APP": APP}
    epoch = bumped_epoch(run_cli("bump", "--json", "cluster-acl-1", env=env))
    with (
        serve(web, APP, resync_interval=60, startup_timeout=5) as (middleware, server),
        Traffic(server.url) as tr,
    ):
        tr.wait_for_epoch(epoch, timeout=10)
        second = bumped_epoch(run_cli("bump", "--json", "cluster-acl-2", env=env))
        assert second > epoch
        tr.wait_for_epoch(second, timeout=SLACK + 2)  # over pub/sub: resync is 60 s
        listener = middleware.listener
        assert listener is not None and listener.failures == 0, listener.last_error if listener else None
        assert tr.failures == []
    refused = run_cli("bump", "sneaky", env={**env, "SPA_VERSION_URL": web})
    assert refused.returncode != 0 and "permission denied" in refused.stderr, refused.stderr
