"""The built documentation site, checked in headless Chromium and by a link crawler.

Skipped unless the site was built (``sphinx-build -W -b html docs docs/_build/html``) and,
for the browser tests, unless ``/usr/bin/chromium``, its driver and selenium are present.
CI does not build the site, so there this file only skips.

Set ``FASTLOSS_DOCS_SCREENSHOT=path.png`` to save a screenshot of the gallery page.
"""
from __future__ import annotations

import functools
import html.parser
import http.server
import os
import shutil
import tempfile
import threading
import urllib.parse

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                    "_build", "html")
CHROMIUM = "/usr/bin/chromium"
PAGES = ("index.html", "api/generated/fastloss.huber.html", "gallery/index.html",
         "performance.html", "guide/reductions.html")

built = pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "index.html")),
                           reason="docs site not built (sphinx-build -b html docs docs/_build/html)")


# ------------------------------------------------------------------ the link crawler
class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        for key in ("href", "src"):
            if a.get(key) and not (tag == "link" and a.get("rel") == "preconnect"):
                self.links.append(a[key])


@functools.lru_cache(maxsize=None)
def _parse(path):
    p = _Links()
    with open(path, encoding="utf-8") as f:
        p.feed(f.read())
    return p


def _internal_targets(page):
    """(link, file, fragment) of every internal link of one HTML file."""
    out = []
    for link in _parse(page).links:
        u = urllib.parse.urlsplit(link)
        if u.scheme or u.netloc or link.startswith(("mailto:", "javascript:", "data:")):
            continue
        target = page if not u.path else os.path.normpath(
            os.path.join(os.path.dirname(page), urllib.parse.unquote(u.path)))
        if os.path.isdir(target):
            target = os.path.join(target, "index.html")
        out.append((link, target, urllib.parse.unquote(u.fragment)))
    return out


def _html_files():
    for d, _, files in os.walk(ROOT):
        if os.path.relpath(d, ROOT).split(os.sep)[0] == "_static":   # theme templates
            continue
        for f in files:
            if f.endswith(".html"):
                yield os.path.join(d, f)


@built
def test_no_broken_internal_link():
    """Every href/src inside the site resolves to a file, and every #fragment to an id."""
    broken, checked = [], 0
    for page in _html_files():
        for link, target, frag in _internal_targets(page):
            checked += 1
            if not os.path.exists(target):
                broken.append(f"{os.path.relpath(page, ROOT)}: {link} (no file)")
            elif frag and target.endswith(".html") and frag not in _parse(target).ids:
                broken.append(f"{os.path.relpath(page, ROOT)}: {link} (no id {frag!r})")
    assert checked > 500
    assert not broken, "\n".join(broken[:50])


@built
def test_every_loss_has_an_api_page_and_a_figure():
    import fastloss
    for name in fastloss.LOSSES:
        assert os.path.exists(os.path.join(ROOT, "api", "generated", f"fastloss.{name}.html")), name
    gallery = _parse(os.path.join(ROOT, "gallery", "index.html"))
    imgs = [s for s in gallery.links if s.endswith(".png")]
    assert len(imgs) >= len(fastloss.LOSSES) - 1        # the gallery draws every family it knows


# ------------------------------------------------------------------ headless Chromium
def _driver(profile):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1280,1600",
                 f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)


@pytest.fixture(scope="module")
def site():
    if not (os.path.exists(CHROMIUM) and (shutil.which("chromedriver")
                                          or os.path.exists("/usr/bin/chromedriver"))):
        pytest.skip("Chromium or chromedriver missing (apt-get install chromium chromium-driver)")
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=ROOT)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    profile = tempfile.mkdtemp(prefix="fastloss-chromium-")
    driver = _driver(profile)
    driver.set_page_load_timeout(60)
    try:
        yield driver, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        driver.quit()
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver, script, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout).until(lambda d: d.execute_script(script))


_IMAGES = """return Array.from(document.images).map(i => [i.src, i.complete, i.naturalWidth]);"""
_LINKS = """return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)
              .filter(h => h.startsWith(location.origin));"""


@built
@pytest.mark.parametrize("page", PAGES)
def test_page_in_chromium(site, page):
    driver, base = site
    driver.get(base + page)
    _wait(driver, "return document.readyState === 'complete'")
    assert "fastloss" in driver.title
    # images loaded (naturalWidth > 0 once decoded)
    _wait(driver, "return Array.from(document.images).every(i => i.complete)")
    imgs = driver.execute_script(_IMAGES)
    bad = [src for src, done, w in imgs if not (done and w > 0)]
    assert not bad, bad
    if page.startswith("gallery"):
        assert len(imgs) >= 20
    if "api/" in page:
        # MathJax (loaded from its CDN when online) typesets the formulas into mjx-container
        # elements; offline, the raw TeX stays inside Sphinx's math containers
        n_math = driver.execute_script(
            "return document.querySelectorAll('div.math, span.math').length")
        assert n_math >= 1
        try:
            _wait(driver, "return document.querySelectorAll('mjx-container').length > 0", 20)
        except Exception:
            if driver.execute_script("return typeof window.MathJax === 'object' && "
                                     "!!window.MathJax.startup"):
                raise AssertionError("MathJax loaded but rendered no formula")
            pytest.skip("MathJax not reachable (offline); math containers present")
    # no broken internal link: every same-origin link answers 200
    import urllib.request
    for href in sorted(set(driver.execute_script(_LINKS)))[:200]:
        url = href.split("#")[0]
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.status == 200, href
    shot = os.environ.get("FASTLOSS_DOCS_SCREENSHOT")
    if shot:
        root, ext = os.path.splitext(shot)
        driver.save_screenshot(f"{root}-{page.replace('/', '_').replace('.html', '')}{ext}")
