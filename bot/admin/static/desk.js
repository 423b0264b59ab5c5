// The desk's one script: the phone menu, "select the visible", and hotkeys. Every action it
// triggers is a plain form the desk also takes without it.
"use strict";
document.documentElement.classList.add("js");

document.addEventListener("DOMContentLoaded", () => {
  menu();
  selectVisible();
  const page = document.body.dataset.page;
  if (page === "list") hotkeys(() => visible(document.querySelectorAll("table.register tr.row")), listKeys);
  if (page === "review" || page === "request") hotkeys(() => Array.from(document.querySelectorAll("article.candidate")), cardKeys);
});

function menu() {
  const toggle = document.getElementById("menu-toggle");
  const nav = document.getElementById("menu");
  if (!toggle || !nav) return;
  toggle.addEventListener("click", () => {
    const open = nav.classList.toggle("open");
    toggle.setAttribute("aria-expanded", String(open));
  });
}

// What is on screen: not folded away under a closed "N candidatos más".
function visible(elements) {
  return Array.from(elements).filter((element) => !element.closest("details:not([open])"));
}

// "Seleccionar los visibles" ticks the rows on screen only: never the candidates folded away
// (open that list to pick them one by one).
function selectVisible() {
  const all = document.getElementById("select-all");
  if (!all) return;
  all.addEventListener("change", () => {
    for (const box of visible(document.querySelectorAll("input.pick"))) box.checked = all.checked;
  });
}

// Keys typed into a field are text, not commands (a ticked checkbox or a button is no field).
function typing(event) {
  const target = event.target;
  if (!(target instanceof HTMLElement)) return false;
  if (target instanceof HTMLInputElement) return !["checkbox", "radio", "submit", "button"].includes(target.type);
  return target.isContentEditable || ["TEXTAREA", "SELECT"].includes(target.tagName);
}

// j/k move a cursor over the items ``items()`` gives (asked again at each key, as folded
// rows open and close); the other keys go to ``act`` with the item under the cursor.
function hotkeys(items, act) {
  let current = items()[0];
  if (!current) return;
  current.classList.add("focused");
  const move = (step) => {
    const list = items();
    const index = Math.max(0, Math.min(list.length - 1, list.indexOf(current) + step));
    current.classList.remove("focused");
    current = list[index];
    current.classList.add("focused");
    current.scrollIntoView({ block: "nearest" });
  };
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Escape") { cancelChoosing(); return; }
    if (typing(event) && !choosing) return;
    if (event.key === "j") move(1);
    else if (event.key === "k") move(-1);
    else if (!act(current, event.key)) return;
    event.preventDefault();
  });
}

function listKeys(row, key) {
  if (key === "x") {
    const box = row.querySelector("input.pick");
    if (box) box.checked = !box.checked;
    return true;
  }
  if (key === "o" || key === "Enter") {
    const request = row.dataset.request;
    if (request) window.location.assign("/requests/" + request);
    return true;
  }
  return false;
}

// On a candidate: a approve, f flag, s skip; r rejects with the reason chosen, or first asks
// for one: the reason menu is highlighted and 1-9 picks a reason and rejects.
let choosing = null;

function cancelChoosing() {
  if (choosing) choosing.classList.remove("choosing");
  choosing = null;
}

function cardKeys(card, key) {
  const form = card.querySelector("form.decide");
  if (!form) return false;
  const press = (value) => {
    const button = form.querySelector(`button[value="${value}"]`);
    if (button) form.requestSubmit(button);
  };
  if (choosing) {
    const number = Number.parseInt(key, 10);
    const select = choosing.querySelector("select[name=reason]");
    if (number >= 1 && number < select.options.length) {
      select.selectedIndex = number;
      const chosen = choosing;
      cancelChoosing();
      chosen.requestSubmit(chosen.querySelector('button[value="rejected"]'));
    }
    return true;
  }
  if (key === "a") { press("approved"); return true; }
  if (key === "f") { press("flagged"); return true; }
  if (key === "s") {
    const skip = card.querySelector("form.skip button");
    if (skip) skip.click();
    return Boolean(skip);
  }
  if (key === "r") {
    const select = form.querySelector("select[name=reason]");
    if (select.value) { press("rejected"); return true; }
    choosing = form;
    form.classList.add("choosing");
    select.scrollIntoView({ block: "nearest" });
    return true;
  }
  return false;
}
