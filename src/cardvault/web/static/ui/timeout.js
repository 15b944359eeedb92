// The timeout warning (WCAG 2.2.1; web/ui/timeout.py says what the server does). At least two
// minutes before the session ends, a modal dialog says when, and what will be lost; "Stay
// signed in" restarts the idle timer on the server. A session that reaches its absolute limit
// cannot be extended: the dialog says so. Before it warns and before it gives up, the page
// asks the server (without restarting any timer) whether another tab kept the session alive,
// and tabs of one area tell each other about new limits through localStorage.
"use strict";
(function () {
  const dialog = document.getElementById("timeout-dialog");
  if (!dialog || typeof dialog.showModal !== "function") return;
  const d = dialog.dataset;
  const signedIn = d.signedIn === "true";
  // an anonymous page loses nothing but a form it is filling in
  if (!signedIn && !document.querySelector("main form[method='post']")) return;

  const WARN = Number(d.warnSeconds) * 1000;
  const STORE = "cardvault-session-" + d.area;
  const when = document.getElementById("timeout-when");
  const live = document.getElementById("timeout-live");
  const stay = document.getElementById("timeout-stay");
  const leave = document.getElementById("timeout-leave");
  const STAY = stay.textContent;
  let idleEnd = 0, end = 0, timer = 0, ticker = 0, opener = null, lastSaid = "";
  let dismissed = false;  // the absolute limit's warning was read and closed

  function remaining() { return Math.min(idleEnd, end) - Date.now(); }
  function absoluteFirst() { return end <= idleEnd; }

  function inWords(ms) {
    const seconds = Math.max(0, Math.ceil(ms / 1000));
    if (seconds >= 90) return Math.round(seconds / 60) + " minutes";
    if (seconds >= 60) return "1 minute";
    // count down by 15 seconds: a screen reader hears a few updates, not every second
    const rounded = seconds > 20 ? Math.ceil(seconds / 15) * 15 : seconds;
    return rounded + (rounded === 1 ? " second" : " seconds");
  }

  function clock(ms) {
    return new Date(Date.now() + ms).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
  }

  function say() {
    const left = remaining();
    let text;
    if (absoluteFirst()) {
      text = (signedIn ? "You have been signed in for the longest time allowed (" + d.absolute +
              "). We will sign you out in " : "This page has been open for the longest time allowed (" +
              d.absolute + "). It will stop working in ") + inWords(left) + ", at " + clock(left) +
             ", and this cannot be extended.";
    } else {
      text = (signedIn ? "We will sign you out in " : "This page will stop working in ") +
             inWords(left) + " (at " + clock(left) + ") because " +
             (signedIn ? "you have not used this service for a while." : "it has not been used for a while.");
    }
    when.textContent = text;
    const words = inWords(left);
    if (words !== lastSaid) { lastSaid = words; live.textContent = text; }
    if (left <= 0) expired();
  }

  function adopt(limits, share) {
    idleEnd = Date.now() + limits.idle_seconds * 1000;
    end = Date.now() + limits.end_seconds * 1000;
    if (remaining() > WARN) dismissed = false;
    if (share) {
      try { localStorage.setItem(STORE, JSON.stringify({ idleEnd: idleEnd, end: end })); } catch (e) { /* private mode */ }
    }
  }

  function schedule() {
    // before the warning: a check at its time; inside it (warned, or dismissed at the
    // absolute limit): the end itself
    clearTimeout(timer);
    const left = remaining();
    if (left > WARN) timer = setTimeout(check, left - WARN);
    else if (!dialog.open && !dismissed) timer = setTimeout(check, 0);  // a limit under 2 minutes
    else timer = setTimeout(function () { expired(false); }, Math.max(0, left));
  }

  async function status() {
    try {
      const r = await fetch(d.status, { credentials: "same-origin", cache: "no-store" });
      return r.ok ? await r.json() : null;
    } catch (e) {
      return null;  // the network, not the session: decide by our own clock
    }
  }

  function stillAlive(s) {
    return s && s.active && (!signedIn || s.signed_in);
  }

  async function check() {
    const s = await status();
    if (s && !stillAlive(s)) return expired(true);
    if (s) adopt(s, false);
    if (remaining() > WARN) return schedule();  // another tab kept the session alive
    warn();
    schedule();
  }

  function warn() {
    // at the absolute limit staying is not possible: the first button only closes the message
    stay.textContent = absoluteFirst() ? "Close this message" : STAY;
    if (!dialog.open) {
      opener = document.activeElement;
      // the dialog's description is read when it opens; the live region only says changes
      lastSaid = inWords(remaining());
      live.textContent = "";
      dialog.showModal();
      stay.focus();
    }
    clearInterval(ticker);
    ticker = setInterval(say, 1000);
    say();
  }

  function close() {
    clearInterval(ticker);
    live.textContent = "";
    if (dialog.open) dialog.close();
    if (opener && typeof opener.focus === "function") opener.focus();
  }

  async function expired(known) {
    clearInterval(ticker);
    clearTimeout(timer);
    if (!known) {
      const s = await status();
      if (stillAlive(s) && Math.min(s.idle_seconds, s.end_seconds) > 5) {
        adopt(s, false);
        if (remaining() > WARN) close();
        return schedule();
      }
    }
    if (signedIn) {
      location.assign(d.signedOut + "?why=" + (absoluteFirst() ? "absolute" : "idle"));
      return;
    }
    // an anonymous page: its form no longer works; say so and offer a fresh copy
    document.getElementById("timeout-heading").textContent = "This page has timed out";
    when.textContent = "For your security, this page stopped working after " + d.idle +
                       " without activity. Reload it to start again.";
    live.textContent = when.textContent;
    stay.textContent = "Reload the page";
    stay.hidden = false;
    stay.onclick = function () { location.reload(); };
    if (!dialog.open) dialog.showModal();
    stay.focus();
  }

  async function extend() {
    let answer = null;
    try {
      const r = await fetch(d.extend, { method: "POST", credentials: "same-origin", cache: "no-store",
                                        headers: { "X-CSRF-Token": d.csrf } });
      answer = r.ok ? await r.json() : { active: false };
    } catch (e) {
      answer = null;
    }
    if (answer && !stillAlive(answer)) return expired(true);
    close();
    if (answer) adopt(answer, true);
    schedule();
  }

  function dismiss() {
    // the absolute limit: nothing to extend; the page still leaves when the session ends
    dismissed = true;
    close();
    schedule();
  }

  stay.addEventListener("click", function () {
    if (stay.onclick) return;
    if (absoluteFirst()) dismiss(); else extend();
  });
  if (leave) {
    leave.addEventListener("click", function () {
      // sign out as the page's own "Sign out" does: a POST with the form token
      const form = document.createElement("form");
      form.method = "post";
      form.action = d.logout;
      const token = document.createElement("input");
      token.type = "hidden";
      token.name = "csrf_token";
      token.value = d.csrf;
      form.appendChild(token);
      document.body.appendChild(form);
      form.submit();
    });
  }
  // Escape means "not now": it keeps the session, as GOV.UK's timeout warning does
  dialog.addEventListener("cancel", function (event) {
    event.preventDefault();
    if (stay.onclick) return;
    if (absoluteFirst()) dismiss(); else extend();
  });
  window.addEventListener("storage", function (event) {
    if (event.key !== STORE || !event.newValue) return;
    try {
      const shared = JSON.parse(event.newValue);
      idleEnd = shared.idleEnd;
      end = shared.end;
    } catch (e) {
      return;
    }
    if (remaining() > WARN) {
      dismissed = false;
      if (dialog.open) close();
    }
    schedule();
  });

  adopt({ idle_seconds: Number(d.idleSeconds), end_seconds: Number(d.endSeconds) }, true);
  schedule();
})();
