// The live check of a prompt being edited: after a pause in typing, the text goes to the dashboard's check
// endpoint (the validator /prompt set runs, with its messages) and the answer is shown under the editor.
// Nothing is saved; without this script the page works the same, the check happening on "Save".
"use strict";
(function () {
  const form = document.getElementById("prompt-form");
  const out = document.getElementById("live-check");
  if (!form || !out || !window.fetch) {
    return;
  }
  const text = form.elements.namedItem("text");
  const csrf = form.elements.namedItem("csrf");
  const url = form.dataset.check;
  let timer = 0;
  let asked = 0;

  function show(message, state) {
    out.textContent = message;
    out.dataset.state = state;
  }

  async function check() {
    const mine = ++asked;
    show("Checking…", "busy");
    try {
      const response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        body: new URLSearchParams({ csrf: csrf.value, text: text.value }),
      });
      if (mine !== asked) {
        return; // a newer check is on its way
      }
      if (!response.ok) {
        show("The text could not be checked just now (reload the page if this lasts).", "error");
        return;
      }
      const answer = await response.json();
      show(String(answer.message), answer.ok ? "ok" : "refused");
    } catch (e) {
      if (mine === asked) {
        show("The text could not be checked just now (reload the page if this lasts).", "error");
      }
    }
  }

  text.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(check, 400);
  });
})();
