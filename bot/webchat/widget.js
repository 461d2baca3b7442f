/*
 * Civic assistant web chat widget: plain JavaScript, no build step, no external resources.
 *
 *   <script src=".../widget.js" data-rasa-url="http://127.0.0.1:5005" data-lang="vi"></script>
 *
 * Talks to Rasa 3.6's REST channel: POST {rasa}/webhooks/rest/webhook with
 * {"sender": id, "message": text, "metadata": {"language": "vi"}} and renders the returned list
 * of {text, buttons: [{title, payload | url}], image}. Rasa must allow the page's origin (CORS).
 * Interface strings come from strings.json beside this file; every reply text comes from Rasa.
 * Optional attributes: data-open="true" (start opened), data-timeout-ms (default 30000).
 */
(function () {
  "use strict";

  var script =
    document.currentScript || document.querySelector("script[data-rasa-url][src*='widget.js']");
  if (!script || window.__civicWebchat) {
    return;
  }
  window.__civicWebchat = true;

  var BASE = new URL(".", script.src).href;
  var RASA_URL = (script.getAttribute("data-rasa-url") || "http://127.0.0.1:5005").replace(
    /\/+$/,
    ""
  );
  var TIMEOUT_MS = Number(script.getAttribute("data-timeout-ms")) || 30000;
  var SENDER_KEY = "civic-webchat-sender";
  var lang = script.getAttribute("data-lang") === "en" ? "en" : "vi";
  var strings = { vi: {}, en: {} };
  var ui = {};
  var queue = Promise.resolve();
  var memorySender = null;

  function t(key) {
    return (strings[lang] && strings[lang][key]) || (strings.vi && strings.vi[key]) || key;
  }

  function randomId() {
    var bytes = new Uint8Array(16);
    if (window.crypto && window.crypto.getRandomValues) {
      window.crypto.getRandomValues(bytes);
    } else {
      for (var i = 0; i < bytes.length; i += 1) {
        bytes[i] = Math.floor(Math.random() * 256);
      }
    }
    return Array.prototype.map
      .call(bytes, function (b) {
        return ("0" + b.toString(16)).slice(-2);
      })
      .join("");
  }

  function senderId() {
    try {
      var id = window.sessionStorage.getItem(SENDER_KEY);
      if (!id) {
        id = "web-" + randomId();
        window.sessionStorage.setItem(SENDER_KEY, id);
      }
      return id;
    } catch (err) {
      // storage disabled (private mode): keep the id for this page only
      memorySender = memorySender || "web-" + randomId();
      return memorySender;
    }
  }

  function el(tag, className, attrs) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    Object.keys(attrs || {}).forEach(function (name) {
      node.setAttribute(name, attrs[name]);
    });
    return node;
  }

  function srOnly(text) {
    var span = el("span", "cw-sr");
    span.textContent = text;
    return span;
  }

  function isWebUrl(value) {
    try {
      var url = new URL(String(value), window.location.href);
      return url.protocol === "https:" || url.protocol === "http:";
    } catch (err) {
      return false;
    }
  }

  // Text with http(s) links made clickable; never innerHTML, so replies cannot inject markup.
  function appendLinkified(parent, text) {
    var pattern = /https?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)]/g;
    var last = 0;
    var match;
    while ((match = pattern.exec(text)) !== null) {
      parent.appendChild(document.createTextNode(text.slice(last, match.index)));
      var link = el("a", "cw-link", { href: match[0], target: "_blank", rel: "noopener noreferrer" });
      link.textContent = match[0];
      link.appendChild(srOnly(" " + t("new_tab")));
      parent.appendChild(link);
      last = match.index + match[0].length;
    }
    parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function scrollToEnd() {
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  function addMessage(who, text) {
    var item = el("div", "cw-msg cw-msg--" + who);
    item.appendChild(srOnly(t(who === "user" ? "you" : "bot") + ": "));
    var body = el("span", "cw-msg__text");
    appendLinkified(body, text);
    item.appendChild(body);
    ui.log.appendChild(item);
    scrollToEnd();
    return item;
  }

  function addImage(src) {
    if (!isWebUrl(src)) {
      return;
    }
    var item = el("div", "cw-msg cw-msg--bot cw-msg--image");
    var img = el("img", "cw-img", { src: src, alt: t("image_alt"), loading: "lazy" });
    item.appendChild(img);
    ui.log.appendChild(item);
    scrollToEnd();
  }

  function addButtons(buttons) {
    var group = el("div", "cw-quick", { role: "group", "aria-label": t("quick_replies") });
    buttons.forEach(function (button) {
      var title = String(button.title || button.payload || "");
      if (!title) {
        return;
      }
      var node = el("button", "cw-quick__btn", { type: "button" });
      node.textContent = title;
      node.addEventListener("click", function () {
        if (button.url && isWebUrl(button.url)) {
          window.open(button.url, "_blank", "noopener");
          return;
        }
        Array.prototype.forEach.call(group.querySelectorAll("button"), function (b) {
          b.disabled = true;
        });
        node.classList.add("cw-quick__btn--chosen");
        send(String(button.payload || title), title);
        ui.input.focus();
      });
      group.appendChild(node);
    });
    if (group.childNodes.length) {
      ui.log.appendChild(group);
      scrollToEnd();
    }
  }

  function addError(payload, shown) {
    var item = el("div", "cw-msg cw-msg--error");
    item.appendChild(srOnly(t("bot") + ": "));
    var text = el("span", "cw-msg__text");
    text.textContent = t("error_unreachable");
    item.appendChild(text);
    var retry = el("button", "cw-retry", { type: "button" });
    retry.textContent = t("retry");
    retry.addEventListener("click", function () {
      item.remove();
      send(payload, null, shown);
      ui.input.focus();
    });
    item.appendChild(retry);
    ui.log.appendChild(item);
    scrollToEnd();
  }

  function renderReplies(replies) {
    (Array.isArray(replies) ? replies : []).forEach(function (reply) {
      if (!reply || typeof reply !== "object") {
        return;
      }
      if (reply.text) {
        addMessage("bot", String(reply.text));
      }
      if (reply.image) {
        addImage(reply.image);
      }
      var buttons = reply.buttons || reply.quick_replies;
      if (Array.isArray(buttons) && buttons.length) {
        addButtons(buttons);
      }
    });
  }

  function setTyping(on) {
    ui.typing.hidden = !on;
    ui.typingText.textContent = on ? t("typing") : "";
    if (on) {
      scrollToEnd();
    }
  }

  function postToRasa(message) {
    var controller = window.AbortController ? new AbortController() : null;
    var timer = controller
      ? setTimeout(function () {
          controller.abort();
        }, TIMEOUT_MS)
      : null;
    return fetch(RASA_URL + "/webhooks/rest/webhook", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sender: senderId(), message: message, metadata: { language: lang } }),
      signal: controller ? controller.signal : undefined,
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .finally(function () {
        if (timer) {
          clearTimeout(timer);
        }
      });
  }

  // shown: the bubble text for the citizen (null = send silently, e.g. a language switch)
  function send(payload, shown, alreadyShown) {
    if (shown && !alreadyShown) {
      addMessage("user", shown);
    }
    queue = queue.then(function () {
      setTyping(true);
      return postToRasa(payload)
        .then(renderReplies)
        .catch(function () {
          addError(payload, shown || alreadyShown);
        })
        .finally(function () {
          setTyping(false);
        });
    });
    return queue;
  }

  function applyStrings() {
    document.documentElement.setAttribute("data-cw-lang", lang);
    ui.root.setAttribute("lang", lang);
    ui.launcherText.textContent = t("launcher");
    ui.launcher.setAttribute("aria-label", t("launcher"));
    ui.title.textContent = t("title");
    ui.subtitle.textContent = t("subtitle");
    ui.close.setAttribute("aria-label", t("close"));
    ui.close.setAttribute("title", t("close"));
    ui.langButton.textContent = t("lang_switch");
    ui.langButton.setAttribute("aria-label", t("lang_switch_label"));
    ui.log.setAttribute("aria-label", t("log_label"));
    ui.label.textContent = t("input_label");
    ui.input.setAttribute("placeholder", t("input_placeholder"));
    ui.sendButton.textContent = t("send");
  }

  function setOpen(open) {
    ui.panel.hidden = !open;
    ui.launcher.setAttribute("aria-expanded", open ? "true" : "false");
    ui.root.classList.toggle("cw-root--open", open);
    if (open) {
      ui.input.focus();
    } else {
      ui.launcher.focus();
    }
  }

  function build() {
    ui.root = el("div", "cw-root");
    ui.launcher = el("button", "cw-launcher", {
      type: "button",
      id: "cw-launcher",
      "aria-controls": "cw-panel",
      "aria-expanded": "false",
    });
    var icon = el("span", "cw-launcher__icon", { "aria-hidden": "true" });
    ui.launcherText = el("span", "cw-launcher__text");
    ui.launcher.appendChild(icon);
    ui.launcher.appendChild(ui.launcherText);

    ui.panel = el("section", "cw-panel", {
      id: "cw-panel",
      role: "dialog",
      "aria-modal": "false",
      "aria-labelledby": "cw-title",
    });
    ui.panel.hidden = true;

    var header = el("div", "cw-header");
    var heading = el("div", "cw-heading");
    ui.title = el("h2", "cw-title", { id: "cw-title" });
    ui.subtitle = el("p", "cw-subtitle");
    heading.appendChild(ui.title);
    heading.appendChild(ui.subtitle);
    ui.langButton = el("button", "cw-lang", { type: "button", id: "cw-lang" });
    ui.close = el("button", "cw-close", { type: "button", id: "cw-close" });
    ui.close.appendChild(el("span", "cw-close__x", { "aria-hidden": "true" }));
    header.appendChild(heading);
    header.appendChild(ui.langButton);
    header.appendChild(ui.close);

    ui.log = el("div", "cw-log", {
      id: "cw-log",
      role: "log",
      "aria-live": "polite",
      "aria-relevant": "additions",
      tabindex: "0",
    });
    ui.typing = el("div", "cw-typing", { role: "status", id: "cw-typing" });
    ui.typing.hidden = true;
    var dots = el("span", "cw-typing__dots", { "aria-hidden": "true" });
    dots.appendChild(el("span"));
    dots.appendChild(el("span"));
    dots.appendChild(el("span"));
    ui.typingText = el("span", "cw-sr");
    ui.typing.appendChild(dots);
    ui.typing.appendChild(ui.typingText);

    ui.form = el("form", "cw-form", { id: "cw-form", autocomplete: "off" });
    ui.label = el("label", "cw-sr", { for: "cw-input" });
    ui.input = el("input", "cw-input", {
      id: "cw-input",
      type: "text",
      name: "message",
      maxlength: "1000",
      enterkeyhint: "send",
    });
    ui.sendButton = el("button", "cw-send", { type: "submit", id: "cw-send" });
    ui.form.appendChild(ui.label);
    ui.form.appendChild(ui.input);
    ui.form.appendChild(ui.sendButton);

    ui.panel.appendChild(header);
    ui.panel.appendChild(ui.log);
    ui.panel.appendChild(ui.typing);
    ui.panel.appendChild(ui.form);
    ui.root.appendChild(ui.panel);
    ui.root.appendChild(ui.launcher);
    document.body.appendChild(ui.root);

    ui.launcher.addEventListener("click", function () {
      setOpen(ui.panel.hidden);
    });
    ui.close.addEventListener("click", function () {
      setOpen(false);
    });
    ui.panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        setOpen(false);
      }
    });
    ui.form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = ui.input.value.trim();
      if (!text) {
        return;
      }
      ui.input.value = "";
      send(text, text);
    });
    ui.langButton.addEventListener("click", function () {
      lang = lang === "vi" ? "en" : "vi";
      applyStrings();
      // Tell the assistant too (intent switch_language); its reply comes in the new language.
      send('/switch_language{"language":"' + lang + '"}', null);
      ui.input.focus();
    });

    applyStrings();
    if (script.getAttribute("data-open") === "true") {
      setOpen(true);
    }
  }

  function addStylesheet() {
    var href = BASE + "widget.css";
    if (document.querySelector("link[href='" + href + "']")) {
      return;
    }
    var link = el("link", null, { rel: "stylesheet", href: href });
    document.head.appendChild(link);
  }

  function start() {
    addStylesheet();
    fetch(BASE + "strings.json")
      .then(function (response) {
        return response.ok ? response.json() : strings;
      })
      .catch(function () {
        return strings;
      })
      .then(function (loaded) {
        strings = loaded;
        build();
      });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
