// The console's only script. Pages work without it: forms then get a confirmation page from
// the server, and a pending write refreshes itself through <noscript> meta refresh.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.dataset.confirm;
  if (!question) return;
  if (!window.confirm(question)) {
    event.preventDefault();
    return;
  }
  const confirmed = form.querySelector("input[name=confirmed]");
  if (confirmed) confirmed.value = "yes";
});

// Live updates. A page rendered at event id <body data-live> follows /console/events from
// there (nothing in between is missed). Each region marked data-live-on="<event types>" (and
// data-live-write="<write id>" to keep only that write's events) is fetched again from the
// server when such an event arrives and swapped in place: everything shown stays rendered and
// escaped on the server; the events only say which write or connection changed.
const liveAfter = document.body.dataset.live;
if (liveAfter !== undefined && window.EventSource && window.DOMParser) {
  const indicator = document.getElementById("live");
  const regions = () => Array.from(document.querySelectorAll("[data-live-on]"));
  const show = (state, text) => {
    if (!indicator) return;
    indicator.hidden = false;
    indicator.dataset.state = state;
    indicator.textContent = text;
  };

  let busy = false;
  let again = false;
  const refresh = async () => {
    if (busy) {
      again = true; // one more fetch after this one: events that came meanwhile are in it
      return;
    }
    busy = true;
    try {
      const answer = await fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
      const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
      swap(fresh, answer.url);
    } catch (error) {
      // the gateway restarting: the next event (or a reload) brings the page up to date
    } finally {
      busy = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  };

  const swap = (fresh, url) => {
    const current = regions();
    if (current.some((region) => !fresh.getElementById(region.id))) {
      window.location.replace(url); // another page (signed out, or gone): show it as it is
      return;
    }
    for (const region of current) {
      const seen = new Set(Array.from(region.querySelectorAll("[data-key]"), (el) => el.dataset.key));
      const replacement = document.importNode(fresh.getElementById(region.id), true);
      for (const el of replacement.querySelectorAll("[data-key]")) {
        if (!seen.has(el.dataset.key)) el.classList.add("fresh");
      }
      region.replaceWith(replacement);
    }
    if (url !== window.location.href) window.history.replaceState(null, "", url); // a dead letter retried: its write page
    document.title = fresh.title;
    schedule();
  };

  // A 429 pause has no event when it runs out: look again then.
  let timer = null;
  const schedule = () => {
    window.clearTimeout(timer);
    const waits = Array.from(document.querySelectorAll("[data-live-on] [data-refresh-in]"), (el) => Number(el.dataset.refreshIn));
    if (waits.length) timer = window.setTimeout(refresh, Math.min(...waits) * 1000 + 250);
  };
  schedule();

  const source = new EventSource(`/console/events?after=${encodeURIComponent(liveAfter)}`);
  const types = new Set(regions().flatMap((region) => region.dataset.liveOn.split(" ")));
  for (const type of types) {
    source.addEventListener(type, (message) => {
      let fact = {};
      try {
        fact = JSON.parse(message.data);
      } catch (error) {
        return;
      }
      const concerned = regions().some((region) => region.dataset.liveOn.split(" ").includes(type)
        && (!region.dataset.liveWrite || region.dataset.liveWrite === fact.write));
      if (concerned) refresh();
    });
  }
  show("connecting", "connecting…");
  source.addEventListener("open", () => show("open", "live"));
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) show("closed", "not live: reload the page");
    else show("connecting", "reconnecting…");
  });
  window.addEventListener("pagehide", () => source.close());
}
