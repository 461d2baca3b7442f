/*
 * Civic assistant web chat widget: plain JavaScript, no build step, no external resources.
 *
 *   <script src=".../widget.js" data-rasa-url="http://127.0.0.1:5005" data-lang="vi"></script>
 *
 * Talks to our web chat channel in Rasa (bot/channels/webchat.py): POST
 * {rasa}/webhooks/webchat/session gives a signed session token (kept in sessionStorage, renewed
 * near its expiry); every message goes to POST {rasa}/webhooks/webchat/webhook with
 * "Authorization: Bearer <token>" and {"message": text, "metadata": {"language": "vi"}}, and the
 * returned list of {text, buttons: [{title, payload | url}], image} is rendered. The server, not
 * this script, decides the conversation id. Rasa must allow the page's origin (CORS).
 * Messages the citizen did not ask for (a call-centre agent's, the hand-back lines) come from a
 * long-poll, GET {rasa}/webhooks/webchat/inbox?after=<cursor> with the same bearer, looped while
 * the page is open and a session exists; an agent's message is labelled as from a person.
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
  var SESSION_KEY = "civic-webchat-session";
  var SESSION_PATH = "/webhooks/webchat/session";
  var WEBHOOK_PATH = "/webhooks/webchat/webhook";
  var INBOX_PATH = "/webhooks/webchat/inbox";
  var INBOX_KEY = "civic-webchat-inbox"; // the inbox cursor (server time), kept with the session
  var INBOX_IDLE_MS = 3000; // no session yet: look again this often (no request is sent)
  var INBOX_RETRY_MS = [2000, 5000, 10000, 30000]; // after failed polls, one after another
  var RENEW_BEFORE_MS = 5 * 60 * 1000; // renew a token this long before it expires
  var MAX_LENGTH = 2000; // characters; the assistant answers over 1500 politely
  var lang = script.getAttribute("data-lang") === "en" ? "en" : "vi";
  var strings = { vi: {}, en: {} };
  var ui = {};
  var queue = Promise.resolve();
  var memorySession = null;
  var memoryCursor = null;

  function t(key) {
    return (strings[lang] && strings[lang][key]) || (strings.vi && strings.vi[key]) || key;
  }

  // {token, expiresAt, renewAt} (ms, this browser's clock); sessionStorage keeps it for this tab
  // only, across reloads. Without storage (private mode) it lives as long as the page.
  function loadSession() {
    var saved = memorySession;
    try {
      var raw = window.sessionStorage.getItem(SESSION_KEY);
      saved = raw ? JSON.parse(raw) : memorySession; // memory: setItem may have failed
    } catch (err) {
      /* storage disabled or unreadable: the copy in memory */
    }
    if (!saved || typeof saved.token !== "string" || typeof saved.expiresAt !== "number") {
      return null;
    }
    return saved;
  }

  function saveSession(session) {
    memorySession = session;
    try {
      if (session) {
        window.sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
      } else {
        window.sessionStorage.removeItem(SESSION_KEY);
      }
    } catch (err) {
      /* storage disabled: memorySession is enough for this page */
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
    if (who === "agent") {
      // A person wrote this, not the assistant: say so visibly (and to screen readers).
      item.className = "cw-msg cw-msg--bot cw-msg--agent";
      var label = el("span", "cw-msg__who");
      label.textContent = t("agent");
      item.appendChild(label);
    } else {
      item.appendChild(srOnly(t(who === "user" ? "you" : "bot") + ": "));
    }
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

  function addNotice(key) {
    var item = el("div", "cw-msg cw-msg--error");
    item.appendChild(srOnly(t("bot") + ": "));
    var text = el("span", "cw-msg__text");
    text.textContent = t(key);
    item.appendChild(text);
    ui.log.appendChild(item);
    scrollToEnd();
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

  function loadCursor() {
    try {
      var raw = window.sessionStorage.getItem(INBOX_KEY);
      return raw === null ? memoryCursor : Number(raw);
    } catch (err) {
      return memoryCursor;
    }
  }

  function saveCursor(value) {
    memoryCursor = value;
    try {
      if (value === null) {
        window.sessionStorage.removeItem(INBOX_KEY);
      } else {
        window.sessionStorage.setItem(INBOX_KEY, String(value));
      }
    } catch (err) {
      /* storage disabled: memoryCursor is enough for this page */
    }
  }

  function getInbox(after, token) {
    var controller = window.AbortController ? new AbortController() : null;
    var timer = controller
      ? setTimeout(function () {
          controller.abort();
        }, TIMEOUT_MS)
      : null;
    var query = after === null ? "" : "?after=" + encodeURIComponent(String(after));
    return fetch(RASA_URL + INBOX_PATH + query, {
      method: "GET",
      headers: { Authorization: "Bearer " + token },
      cache: "no-store",
      signal: controller ? controller.signal : undefined,
    })
      .then(function (response) {
        if (!response.ok) {
          throw httpError(response.status);
        }
        return response.json();
      })
      .finally(function () {
        if (timer) {
          clearTimeout(timer);
        }
      });
  }

  function renderPushed(messages) {
    (Array.isArray(messages) ? messages : []).forEach(function (message) {
      if (!message || typeof message !== "object") {
        return;
      }
      if (message.text) {
        addMessage(message.from_agent ? "agent" : "bot", String(message.text));
      }
      if (Array.isArray(message.buttons) && message.buttons.length) {
        addButtons(message.buttons);
      }
    });
  }

  // One long-poll after another while the page is open. Before the first message there is no
  // session, and nobody could have written to it: nothing is sent until there is one.
  function pollInbox(failures) {
    var session = loadSession();
    if (!session || Date.now() >= session.expiresAt) {
      setTimeout(function () {
        pollInbox(0);
      }, INBOX_IDLE_MS);
      return;
    }
    // The token as it is: renewing it is the message path's job (sessionToken), not the poll's.
    var tokenUsed = session.token;
    getInbox(loadCursor(), tokenUsed)
      .then(function (data) {
        if (data && typeof data.after === "number") {
          renderPushed(data.messages);
          saveCursor(data.after);
        }
        pollInbox(0);
      })
      .catch(function (err) {
        if (err && err.status === 401) {
          // That session is over; the next message opens another, with a new cursor.
          var current = loadSession();
          if (current && current.token === tokenUsed) {
            saveCursor(null);
          }
        }
        var wait = INBOX_RETRY_MS[Math.min(failures, INBOX_RETRY_MS.length - 1)];
        setTimeout(function () {
          pollInbox(failures + 1);
        }, wait);
      });
  }

  function setTyping(on) {
    ui.typing.hidden = !on;
    ui.typingText.textContent = on ? t("typing") : "";
    if (on) {
      scrollToEnd();
    }
  }

  function post(path, body, token) {
    var controller = window.AbortController ? new AbortController() : null;
    var timer = controller
      ? setTimeout(function () {
          controller.abort();
        }, TIMEOUT_MS)
      : null;
    var headers = { "Content-Type": "application/json" };
    if (token) {
      headers.Authorization = "Bearer " + token;
    }
    // Resolves to {status, data}: the timeout covers reading the answer too.
    return fetch(RASA_URL + path, {
      method: "POST",
      headers: headers,
      body: JSON.stringify(body),
      cache: "no-store",
      signal: controller ? controller.signal : undefined,
    })
      .then(function (response) {
        if (!response.ok) {
          return { status: response.status, data: null };
        }
        return response.json().then(function (data) {
          return { status: response.status, data: data };
        });
      })
      .finally(function () {
        if (timer) {
          clearTimeout(timer);
        }
      });
  }

  function httpError(status) {
    var err = new Error("HTTP " + status);
    err.status = status;
    return err;
  }

  // A new session, or (with the old token) the same conversation under a fresh token.
  function openSession(oldToken) {
    return post(SESSION_PATH, oldToken ? { session: oldToken } : {}).then(function (answer) {
      var data = answer.data;
      if (!data || typeof data.session !== "string") {
        throw httpError(answer.status);
      }
      var lifetime = Math.max(0, Number(data.expires_in) || 0) * 1000;
      var now = Date.now();
      saveSession({
        token: data.session,
        expiresAt: now + lifetime,
        renewAt: now + lifetime - Math.min(RENEW_BEFORE_MS, lifetime / 4),
      });
      return data.session;
    });
  }

  function sessionToken() {
    var session = loadSession();
    if (!session) {
      return openSession(null);
    }
    var now = Date.now();
    if (now < (session.renewAt || session.expiresAt)) {
      return Promise.resolve(session.token);
    }
    return openSession(session.token).catch(function (err) {
      // Renewal failed (network): the old token still works until it expires.
      if (now < session.expiresAt) {
        return session.token;
      }
      throw err;
    });
  }

  function postToRasa(message) {
    var body = { message: message, metadata: { language: lang } };
    return sessionToken()
      .then(function (token) {
        return post(WEBHOOK_PATH, body, token);
      })
      .then(function (answer) {
        if (answer.status !== 401) {
          return answer;
        }
        // Expired or unknown session (e.g. the server's secret changed): one fresh session.
        saveSession(null);
        saveCursor(null);
        return openSession(null).then(function (token) {
          return post(WEBHOOK_PATH, body, token);
        });
      })
      .then(function (answer) {
        if (answer.status < 200 || answer.status > 299) {
          throw httpError(answer.status);
        }
        return answer.data;
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
        .catch(function (err) {
          if (err && err.status === 413) {
            addNotice("error_too_long"); // sending the same text again would not help
          } else {
            addError(payload, shown || alreadyShown);
          }
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
      maxlength: String(MAX_LENGTH),
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
        pollInbox(0);
      });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
