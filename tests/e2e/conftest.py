"""Browser tests: a real Lhama (Daphne subprocess with its own SQLite file; run logs
in-process, or in Redis when REDIS_URL is set) talking to a fake OpenAI-compatible
upstream in this process, driven by Playwright with Debian's chromium.

The upstream is the only fake: `chat_route` picks the answer from the question, so a
test says what the "model" answers by what it types (SLOW…, XSS…, FAIL…, and XSSTITLE…
for a conversation whose generated title is hostile HTML).

Waiting is on conditions with deadlines (Playwright's waits, `wait_until`), never on
time alone.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from contextlib import closing
from pathlib import Path

import pytest

from bench.fake_upstream import FakeUpstream, Script, words

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]

SLOW_TOKENS = words(60, "tok")  # "tok0 " … "tok59 "
SLOW_INTERVAL_S = 0.12
XSS_TOKENS = ["Look: <img src=x ", 'onerror="window.__pwned=1">', " and <script>window.__pwned=2</script> done."]
TITLE_TOKENS = ["Pasta", " cooking", " tips"]
# What the title task gets back from the model for an XSSTITLE… conversation (a valid
# title of five words, 58 characters: it is kept as the model wrote it).
HOSTILE_TITLE = "Hi <img src=x onerror=alert(1)> <script>alert(2)</script>"
HOSTILE_TITLE_TOKENS = ["Hi <img src=x ", "onerror=alert(1)> ", "<script>alert(2)</script>"]


class UpstreamControl:
    """What the fake model answers, chosen from the last user message."""

    def __init__(self) -> None:
        self.fail = False

    def route(self, body: dict) -> Script:
        messages = body.get("messages", [])
        last = next((str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), "")
        if any("short title" in str(m.get("content", "")) for m in messages if m.get("role") == "system"):
            return Script(tokens=HOSTILE_TITLE_TOKENS if last.startswith("XSSTITLE") else TITLE_TOKENS)
        if last.startswith("FAIL") and self.fail:
            return Script(fault="http_500")
        if last.startswith("SLOW"):
            return Script(tokens=list(SLOW_TOKENS), interval=SLOW_INTERVAL_S, usage=False)
        if last.startswith("XSS"):
            return Script(tokens=list(XSS_TOKENS), interval=0.02)
        if last.startswith("CODE"):
            return Script(
                tokens=["Here is **Python**:\n\n", "```python\n", "def greet(name):\n", "    return f\"Hi {name}\"\n",
                        "```\n\n", "- one\n- two\n"],
                interval=0.02,
            )
        return Script(tokens=["Hello", " there", "!"], interval=0.03)


def wait_until(predicate, *, timeout: float = 15.0, interval: float = 0.05, page=None, message: str = ""):
    """Poll `predicate` until it returns something truthy (returned), or fail after
    `timeout` s. Pass the `page` when the condition depends on its events (responses,
    routes, dialogs): Playwright's sync API only delivers them while it is called, so
    the wait between polls is the page's own."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {message or predicate}")
        if page is not None:
            page.wait_for_timeout(interval * 1000)
        else:
            time.sleep(interval)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def upstream_control() -> UpstreamControl:
    return UpstreamControl()


@pytest.fixture(scope="session")
def fake_upstream(upstream_control):
    upstream = FakeUpstream(model="smollm2-135m-instruct").start()
    upstream.route = upstream_control.route
    yield upstream
    upstream.stop()


class LiveServer:
    """A Daphne subprocess serving Lhama on a free port, with its own SQLite file."""

    def __init__(
        self,
        *,
        upstream_url: str,
        base: Path,
        seed_ads: bool = False,
        seed: str = "",
        env_extra: dict | None = None,
        port: int | None = None,
    ) -> None:
        self.base = base
        self.db_path = base / "e2e.sqlite3"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VLLM_", "STRIPE_"))}
        # Its own SQLite file always; Redis (run logs, channel layer, quotas) when the suite
        # runs with REDIS_URL, and then titles come from the Celery task, run eagerly here.
        for name in ("DATABASE_URL", "CELERY_BROKER_URL", "LHAMA_PRODUCTION", "LLM_MODEL_PATH"):
            env.pop(name, None)
        if env.get("REDIS_URL"):
            env["CELERY_TASK_ALWAYS_EAGER"] = "true"
        env.update(
            LHAMA_VAR_DIR=str(base / "var"),
            SQLITE_PATH=str(self.db_path),
            LLM_EMBEDDED_URL=upstream_url,
            DEBUG="true",
            # Each test is a fresh guest; a few tests send more than the guest default per minute.
            BILLING_GUEST_REQUESTS_PER_MINUTE="60",
            # Every guest's ad acknowledgements and clicks come from 127.0.0.1 too.
            ADS_GUEST_SESSIONS_PER_IP_HOUR="100000",
            ADS_RATE_PER_IP="100000/m",
            # ...and every one of them comes from 127.0.0.1: one network with many guests.
            BILLING_GUEST_SESSIONS_PER_ADDRESS_HOUR="100000",
            BILLING_GUEST_ADDRESS_REQUESTS_PER_MINUTE="100000",
            BILLING_GUEST_ADDRESS_CONCURRENT_RUNS="1000",
            BILLING_GUEST_ADDRESS_DAILY_TOKENS="1000000000",
            BILLING_GUEST_TOTAL_DAILY_TOKENS="1000000000",
            PYTHONUNBUFFERED="1",
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")])),
        )
        env.update(env_extra or {})
        self.env = env
        manage = [sys.executable, str(ROOT / "manage.py")]
        for command in (["migrate", "--noinput"], ["createcachetable"]):
            subprocess.run(manage + command, env=env, cwd=ROOT, check=True, capture_output=True, timeout=300)
        extra_seed = seed
        seed = (
            "import sys; from assistant.seed import seed_demo as tiers; tiers(stdout=sys.stdout);"
            " from billing.seed import seed_demo as plans; plans(stdout=sys.stdout)"
        )
        if seed_ads:
            seed += "; from ads.seed import seed_demo as ads; ads(stdout=sys.stdout)"
        for code in (seed, extra_seed):
            if code:
                self.shell(code)
        port = port or _free_port()
        self.log = open(base / "daphne.log", "wb")  # noqa: SIM115 -- kept open for the server's lifetime
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
            env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the live server did not start:\n{(base / 'daphne.log').read_text()[-4000:]}")
            time.sleep(0.2)

    def ask(self, content: str, *, timeout: float = 30.0) -> list[dict]:
        """One question from a new guest over the server's real socket (no browser): the
        frames from `run.started` to `done`, then any that follow within a few seconds
        (the ad comes after the answer)."""
        from websockets.sync.client import connect

        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        opener.open(f"{self.url}/", timeout=10).close()  # the chat page gives the guest a session
        cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
        ws_url = self.url.replace("http://", "ws://", 1) + "/ws/chat/"
        frames: list[dict] = []
        with connect(ws_url, additional_headers={"Origin": self.url, "Cookie": cookie}, open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "hello"
            ws.send(json.dumps({"type": "message.send", "client_id": "e2e", "conversation_id": None,
                                "content": content, "tier": "llama-3.1-8b"}))
            deadline = time.monotonic() + timeout
            while not frames or frames[-1]["type"] not in ("done", "error"):
                frames.append(json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic()))))
            try:
                while True:
                    frames.append(json.loads(ws.recv(timeout=3)))
            except TimeoutError:
                pass
        return frames

    def shell(self, code: str) -> str:
        """Run Python in `manage.py shell` against this server's database and settings;
        its standard output."""
        done = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "shell", "-c", code],
            env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def seed(self, code: str) -> dict:
        """Run seeding code that ends by printing `IDS=<json>`; those ids."""
        line = next(line for line in self.shell(code).splitlines() if line.startswith("IDS="))
        return json.loads(line.removeprefix("IDS="))

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Read the server's database directly (read-only), to check what it stored."""
        with closing(sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)) as db:
            return db.execute(sql, params).fetchall()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


class CeleryWorker:
    """A real Celery worker subprocess with a live server's environment (its database, and
    the embedded broker: kombu's filesystem transport under the server's LHAMA_VAR_DIR,
    as in platform/Procfile.embedded)."""

    def __init__(self, server: LiveServer) -> None:
        self.log_path = server.base / "celery.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 -- kept open for the worker's lifetime
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO", "--pool=solo",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            env=server.env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while b"ready." not in self.log_path.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the Celery worker did not start:\n{self.log_path.read_text()[-4000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def _needs_frontend() -> None:
    if not (ROOT / "static" / "dist" / "chat.js").is_file():
        pytest.skip("the front end is not built (npm run build)")


@pytest.fixture(scope="session")
def live(fake_upstream, tmp_path_factory):
    _needs_frontend()
    server = LiveServer(upstream_url=fake_upstream.base_url, base=tmp_path_factory.mktemp("e2e"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def lhama_server(live) -> str:
    return live.url


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).is_file():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageErrors(list):
    """Uncaught page errors and CSP violations seen by a page."""


def _watch(page) -> PageErrors:
    errors = PageErrors()
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on(
        "console",
        lambda msg: errors.append(f"console: {msg.text}")
        if msg.type == "error" and "Content Security Policy" in msg.text
        else None,
    )
    return errors


@pytest.fixture
def new_page(browser, lhama_server):
    """new_page(viewport=..., color_scheme=...) -> (page, errors); contexts are closed after the test."""
    contexts = []

    def make(**options):
        options.setdefault("viewport", {"width": 1280, "height": 800})
        options.setdefault("base_url", lhama_server)
        context = browser.new_context(**options)
        context.set_default_timeout(15000)
        contexts.append(context)
        page = context.new_page()
        return page, _watch(page)

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


class Journey:
    """The stack the journeys walk through: a live server with the demo campaigns and its
    ad engine warm, Stripe at the network edge, and a real Celery worker (the webhooks'
    processing, titles, the statistics roll-up)."""

    def __init__(self, *, server: LiveServer, stripe, worker: CeleryWorker) -> None:
        self.server, self.stripe, self.worker = server, stripe, worker
        self.url = server.url


@pytest.fixture(scope="module")
def journey(fake_upstream, tmp_path_factory):
    from tests.e2e.stripe_edge import StripeEdge

    _needs_frontend()
    stripe = StripeEdge().start()
    port = _free_port()
    env = {
        **stripe.env(),
        "SITE_URL": f"http://127.0.0.1:{port}",
        # The embedded broker, also when the suite runs with REDIS_URL: the worker below runs the tasks.
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        # A late decision serves no ad (tested in tests/ads); the journeys need the ad, on a
        # test machine shared with a worker and a browser, so they give it more time.
        "ADS_DECISION_BUDGET_S": "2.0",
    }
    server = LiveServer(upstream_url=fake_upstream.base_url, base=tmp_path_factory.mktemp("journey"), seed_ads=True,
                        env_extra=env, port=port)
    worker = None
    try:
        worker = CeleryWorker(server)
        # The first decisions of a process load the ad engine in the background and serve no
        # ad meanwhile: ask over the server's own socket until one is served.
        deadline = time.monotonic() + 120
        while not any(f["type"] == "ad" for f in server.ask("Where can I rent an H100 GPU by the hour?")):
            if time.monotonic() > deadline:
                pytest.fail("the journey server's ad engine served no ad within 120 s")
        yield Journey(server=server, stripe=stripe, worker=worker)
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
        stripe.stop()


@pytest.fixture
def journey_page(browser, journey):
    """journey_page(**context options) -> (page, errors) on the journey's server, as a
    desktop browser (headless chromium's User-Agent is refused by the ad tracking as a bot)."""
    contexts = []

    def make(**options):
        options.setdefault("viewport", {"width": 1280, "height": 800})
        options.setdefault("base_url", journey.url)
        options.setdefault("color_scheme", "light")
        options.setdefault(
            "user_agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
        )
        context = browser.new_context(**options)
        context.set_default_timeout(15000)
        contexts.append(context)
        page = context.new_page()
        return page, _watch(page)

    yield make
    for context in contexts:
        context.close()


def axe_serious(page, name: str) -> None:
    """axe-core on the page as it is now reports no serious or critical violation. Unlike
    test_accessibility.axe_violations (a script tag, so a context that bypasses the CSP),
    axe goes in through the DevTools protocol: the journeys keep the real CSP and still
    see every violation of it."""
    axe = ROOT / "node_modules" / "axe-core" / "axe.min.js"
    if not axe.is_file():
        pytest.skip("axe-core is not installed (npm ci)")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe.read_text())
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
             .filter(v => v.impact === 'serious' || v.impact === 'critical')
             .map(v => ({id: v.id, impact: v.impact, help: v.help,
                         nodes: v.nodes.slice(0, 4).map(n => n.target.join(' ') + ': ' + (n.any[0] || n.all[0] || {}).message)}))"""
    )
    assert found == [], f"{name}: {json.dumps(found, indent=1)}"
