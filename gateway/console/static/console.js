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

// A write still in flight: follow its status and show the page again when it changes.
const badge = document.querySelector("[data-poll]");
if (badge) {
  const url = badge.dataset.poll;
  const shown = badge.textContent.trim();
  const poll = async () => {
    try {
      const answer = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (answer.ok) {
        const write = await answer.json();
        if (write.status !== shown) {
          window.location.replace(window.location.pathname + window.location.search);
          return;
        }
      }
    } catch (error) {
      // the gateway restarting: keep polling
    }
    window.setTimeout(poll, 700);
  };
  window.setTimeout(poll, 700);
}
