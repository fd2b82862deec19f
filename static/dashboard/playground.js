// The playground: streams a chat completion from /v1 with fetch + ReadableStream and shows
// the tokens and cost of the final usage chunk. The API key lives only in this page's memory
// (the key field); it is sent to /v1 in the Authorization header and nowhere else.
(function () {
  "use strict";

  const $ = function (id) { return document.getElementById(id); };
  const history = [];
  let controller = null;

  function csrfToken() {
    const input = document.querySelector("#pg-key-form input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function addMessage(role, text) {
    const item = document.createElement("li");
    item.className = role;
    const label = document.createElement("span");
    label.className = "role";
    label.textContent = role === "user" ? "You" : role === "assistant" ? "Assistant" : "Error";
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    item.append(label, body);
    $("pg-messages").appendChild(item);
    return body;
  }

  async function mintKey(event) {
    event.preventDefault();
    const form = event.target;
    $("pg-key-status").textContent = "Creating a temporary key…";
    try {
      const response = await fetch(form.action, {
        method: "POST",
        headers: { "X-CSRFToken": csrfToken() },
        body: new FormData(form),
        credentials: "same-origin",
      });
      const data = await response.json();
      if (!response.ok) throw new Error(data.error || "Could not create a key.");
      $("pg-key").value = data.secret;
      const until = new Date(data.expires_at).toLocaleTimeString();
      $("pg-key-status").textContent = "Using temporary key " + data.prefix + "… (expires at " + until + ").";
    } catch (error) {
      $("pg-key-status").textContent = error.message;
    }
  }

  function requestBody(model) {
    const messages = [];
    const system = $("pg-system").value.trim();
    if (system) messages.push({ role: "system", content: system });
    return JSON.stringify({
      model: model,
      messages: messages.concat(history),
      stream: true,
      stream_options: { include_usage: true },
    });
  }

  function showUsage(usage) {
    const parts = [
      usage.prompt_tokens + " prompt tokens",
      usage.completion_tokens + " completion tokens",
    ];
    if (usage.cost !== undefined) parts.push("cost $" + String(usage.cost) + " USD");
    $("pg-usage").textContent = parts.join(" · ");
  }

  // Handle one server-sent event; returns false at [DONE].
  function handleEvent(raw, output) {
    const data = raw.split("\n").filter(function (line) { return line.startsWith("data:"); })
      .map(function (line) { return line.slice(5).trim(); }).join("\n");
    if (!data) return true;
    if (data === "[DONE]") return false;
    const chunk = JSON.parse(data);
    if (chunk.error) throw new Error(chunk.error.message || "The stream failed.");
    const choice = chunk.choices && chunk.choices[0];
    if (choice && choice.delta && choice.delta.content) output.textContent += choice.delta.content;
    if (chunk.usage) showUsage(chunk.usage);
    return true;
  }

  async function readStream(response, output) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let boundary = buffer.indexOf("\n\n");
      while (boundary !== -1) {
        const event = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary + 2);
        if (!handleEvent(event, output)) return;
        boundary = buffer.indexOf("\n\n");
      }
    }
  }

  async function errorMessage(response) {
    try {
      const data = await response.json();
      return (data.error && data.error.message) || response.statusText;
    } catch (ignored) {
      return response.status + " " + response.statusText;
    }
  }

  function busy(on) {
    $("pg-send").disabled = on;
    $("pg-stop").disabled = !on;
  }

  async function send(event) {
    event.preventDefault();
    const key = $("pg-key").value.trim();
    const text = $("pg-input").value.trim();
    if (!key) { $("pg-key-status").textContent = "Paste a key first."; $("pg-key").focus(); return; }
    if (!text) return;
    history.push({ role: "user", content: text });
    addMessage("user", text);
    $("pg-input").value = "";
    $("pg-usage").textContent = "";
    const output = addMessage("assistant", "");
    controller = new AbortController();
    busy(true);
    try {
      const base = $("playground").dataset.apiBase;
      const response = await fetch(base + "/chat/completions", {
        method: "POST",
        headers: { "Authorization": "Bearer " + key, "Content-Type": "application/json" },
        body: requestBody($("pg-model").value),
        signal: controller.signal,
        credentials: "omit",
      });
      if (!response.ok) throw new Error(await errorMessage(response));
      await readStream(response, output);
      history.push({ role: "assistant", content: output.textContent });
    } catch (error) {
      if (error.name !== "AbortError") {
        output.parentElement.remove();
        history.pop();
        addMessage("error", error.message);
      }
    } finally {
      busy(false);
      controller = null;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!$("playground")) return;
    $("pg-form").addEventListener("submit", send);
    $("pg-key-form").addEventListener("submit", mintKey);
    $("pg-stop").addEventListener("click", function () { if (controller) controller.abort(); });
    $("pg-clear").addEventListener("click", function () {
      history.length = 0;
      $("pg-messages").textContent = "";
      $("pg-usage").textContent = "";
    });
    $("pg-input").addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("pg-form").requestSubmit();
    });
  });
})();
