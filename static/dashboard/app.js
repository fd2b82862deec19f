// Tollgate dashboard behaviour shared by every page. Loaded as a static file (strict CSP).
(function () {
  "use strict";

  function textOf(element) {
    return "value" in element && element.tagName !== "BUTTON" ? element.value : element.textContent;
  }

  function fallbackCopy(text) {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return fallbackCopy(text); });
    }
    return fallbackCopy(text);
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy-target]");
    if (!button) return;
    const target = document.getElementById(button.dataset.copyTarget);
    if (!target) return;
    copy(textOf(target)).then(function () {
      button.classList.add("copied");
      button.textContent = "Copied";
    }, function () {
      if (target.select) target.select();
      button.textContent = "Press Ctrl+C";
    });
  });

  // After htmx swaps content in, move focus to what asks for it (e.g. a new key's secret).
  document.addEventListener("htmx:afterSettle", function () {
    const wanted = document.querySelector("[data-autofocus]");
    if (wanted) wanted.focus();
  });

  // htmx requests not sent from a form still carry the CSRF token.
  document.addEventListener("htmx:configRequest", function (event) {
    const token = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (token) event.detail.headers["X-CSRFToken"] = token.value;
  });

  // Close the organization switcher on Escape and when clicking elsewhere.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.org-switcher[open]").forEach(function (menu) {
      menu.removeAttribute("open");
      menu.querySelector("summary").focus();
    });
  });
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.org-switcher[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });
})();
