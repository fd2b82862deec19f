"""Helpers of the browser tests: Chromium via Playwright, the file mailbox, screenshots."""

import email
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
MESSAGE_SEPARATOR = "\n" + "-" * 79 + "\n"

T = TypeVar("T")


def off_loop(function: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Run ORM code in a worker thread: Playwright's sync API keeps an event loop on this
    thread, where Django refuses synchronous database calls."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args, **kwargs).result()


@contextmanager
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():  # .ci/run installs it; a browser test never skips quietly
        pytest.fail(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


class ConsoleErrors:
    """Collects console errors of a page (CSP violations among them)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page: Page) -> Page:
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        return page

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)


def mails(mailbox: Path) -> list[email.message.Message]:
    """Every message the server's file backend wrote, oldest first."""
    found = []
    for path in sorted(mailbox.glob("*.log"), key=lambda p: p.stat().st_mtime_ns):
        for raw in path.read_text().split(MESSAGE_SEPARATOR):
            if raw.strip():
                found.append(email.message_from_string(raw.lstrip()))
    return found


def link_in_mail_to(mailbox: Path, address: str, starts_with: str) -> str:
    """The first link starting with `starts_with` in the newest message to `address`."""
    for message in reversed(mails(mailbox)):
        if address in message["To"]:
            body = message.get_payload(decode=True).decode()
            for link in re.findall(r"https?://\S+", body):
                if link.startswith(starts_with):
                    return link
    raise AssertionError(f"no mail to {address} with a link starting {starts_with}")


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
