// memstrata UI: fetches server-rendered, escaped HTML fragments with the API key in a header.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const authOn = document.body.dataset.auth === "1";
  let key = sessionStorage.getItem("memstrata-key") || "";
  let tab = "memories";
  let run = "";  // a run id comes only from the scope picker
  let scopes = [];

  function showError(text) {
    const box = $("error");
    box.textContent = text || "";
    box.hidden = !text;
  }

  function scopeParams(extra) {
    const p = new URLSearchParams();
    const user = $("user").value.trim();
    const agent = $("agent").value.trim();
    if (user) p.set("user_id", user);
    if (agent) p.set("agent_id", agent);
    if (run) p.set("run_id", run);
    for (const [k, v] of Object.entries(extra || {})) if (v !== undefined && v !== null && v !== "") p.set(k, v);
    return p;
  }

  async function call(path, params, init) {
    const headers = Object.assign({}, (init && init.headers) || {});
    if (key) headers["Authorization"] = "Bearer " + key;
    const url = path + (params && [...params].length ? "?" + params.toString() : "");
    const res = await fetch(url, Object.assign({}, init || {}, { headers }));
    if (!res.ok) {
      let detail = res.status + " " + res.statusText;
      try { detail = (await res.json()).detail || detail; } catch (_) { /* not JSON */ }
      if (res.status === 401) $("key-form").hidden = false;
      throw new Error(detail);
    }
    showError("");
    return res;
  }

  async function fill(target, path, extra) {
    try {
      const res = await call(path, scopeParams(extra));
      $(target).innerHTML = await res.text();
    } catch (err) {
      showError(err.message);
    }
  }

  async function whoami() {
    try {
      const me = await (await call("/v1/me")).json();
      const users = me.user_ids || [];
      $("users").innerHTML = "";
      for (const u of users) {
        const opt = document.createElement("option");
        opt.value = u;
        $("users").appendChild(opt);
      }
      if (users.length === 1 && !$("user").value) $("user").value = users[0];
      $("who").textContent = (me.key_id ? me.name : "no auth") + " · " + (me.scopes || []).join(", ");
      $("key-form").hidden = !authOn || !!key;  // no key box when the server asks for none
      return true;
    } catch (err) {
      showError(err.message);
      return false;
    }
  }

  function scopeLabel(s) {
    const ids = [["user", s.user_id], ["agent", s.agent_id], ["run", s.run_id]].filter(([, v]) => v);
    return ids.map(([k, v]) => k + " " + v).join(" · ") + " — " + s.memories + " memories";
  }

  // Every scope the caller may read, newest first; with nothing chosen yet, the newest is opened.
  async function loadScopes() {
    try {
      scopes = (await (await call("/v1/scopes", new URLSearchParams({ limit: "200" }))).json()).results || [];
    } catch (err) {
      showError(err.message);
      return;
    }
    const picker = $("scope-picker");
    picker.replaceChildren(new Option(scopes.length ? "choose…" : "no memories yet", ""));
    scopes.forEach((s, i) => picker.add(new Option(scopeLabel(s), String(i))));
    for (const s of scopes) {
      if (s.user_id && ![...$("users").options].some((o) => o.value === s.user_id)) {
        $("users").appendChild(new Option("", s.user_id));
      }
    }
    if (!$("user").value.trim() && !$("agent").value.trim() && scopes.length) choose(0);
    else markPicker();
  }

  function choose(index) {
    const s = scopes[index];
    if (!s) return;
    $("user").value = s.user_id || "";
    $("agent").value = s.agent_id || "";
    run = s.run_id || "";
    $("scope-picker").value = String(index);
  }

  function markPicker() {
    const user = $("user").value.trim() || null;
    const agent = $("agent").value.trim() || null;
    const i = scopes.findIndex((s) => s.user_id === user && s.agent_id === agent && (s.run_id || "") === run);
    $("scope-picker").value = i < 0 ? "" : String(i);
  }

  function hasScope() {
    return !!($("user").value.trim() || $("agent").value.trim() || run);
  }

  function clearPanels() {
    $("detail").replaceChildren();
    $("neighbourhood").replaceChildren();
  }

  function refresh() {
    if (!hasScope()) {
      const target = { memories: "results", conflicts: "conflicts", entities: "entities", audit: "audit",
        queue: "queue" }[tab];
      $(target).innerHTML = '<p class="empty">Choose a scope above, or type a user id.</p>';
      return;
    }
    if (tab === "memories") {
      fill("results", "/ui/fragments/memories", { q: $("q").value, include_superseded: $("superseded").checked });
    } else if (tab === "conflicts") {
      fill("conflicts", "/ui/fragments/conflicts", { status: $("conflict-status").value });
    } else if (tab === "entities") {
      fill("entities", "/ui/fragments/entities").then(() => {
        const first = document.querySelector("#entities [data-entity]");
        if (first && !$("neighbourhood").childElementCount) first.click();  // draw a graph at once
      });
    } else if (tab === "audit") {
      fill("audit", "/ui/fragments/audit");
    } else if (tab === "queue") {
      fill("queue", "/ui/fragments/ingestions", { status: $("queue-status").value });
    } else if (tab === "conversation" && $("conversation").value.trim()) {
      fill("conversation-view", "/ui/fragments/conversation", { conversation_id: $("conversation").value.trim() });
    }
  }

  $("key-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    key = $("key").value.trim();
    sessionStorage.setItem("memstrata-key", key);
    $("key").value = "";
    if (await whoami()) { await loadScopes(); refresh(); }
  });

  $("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); $("detail").replaceChildren(); refresh(); });
  $("conflict-status").addEventListener("change", refresh);
  $("queue-status").addEventListener("change", refresh);
  $("scope-picker").addEventListener("change", () => {
    if ($("scope-picker").value === "") return;
    choose(Number($("scope-picker").value));
    clearPanels();
    refresh();
  });
  for (const id of ["user", "agent"]) {
    $(id).addEventListener("change", () => { run = ""; markPicker(); clearPanels(); refresh(); });
  }

  document.querySelector(".tabs").addEventListener("click", (ev) => {
    const btn = ev.target.closest("button[data-tab]");
    if (!btn) return;
    tab = btn.dataset.tab;
    for (const b of document.querySelectorAll(".tabs button")) b.setAttribute("aria-selected", String(b === btn));
    for (const name of ["memories", "conflicts", "entities", "audit", "conversation", "queue"]) {
      $("tab-" + name).hidden = name !== tab;
    }
    refresh();
  });

  document.addEventListener("click", async (ev) => {
    const row = ev.target.closest("[data-memory-id]");
    const more = ev.target.closest("button.more");
    const ent = ev.target.closest("[data-entity]");
    const resolve = ev.target.closest("button.resolve");
    const requeue = ev.target.closest("button.requeue");
    if (more) {
      try {
        const res = await call("/ui/fragments/memories", scopeParams({ cursor: more.dataset.cursor }));
        more.insertAdjacentHTML("afterend", await res.text());
        more.remove();
      } catch (err) { showError(err.message); }
    } else if (row) {
      if (tab !== "memories") document.querySelector('.tabs button[data-tab="memories"]').click();
      fill("detail", "/ui/fragments/memory/" + encodeURIComponent(row.dataset.memoryId));
    } else if (ent) {
      fill("neighbourhood", "/ui/fragments/neighbourhood", { entity: ent.dataset.entity });
    } else if (resolve) {
      try {
        const body = Object.fromEntries(scopeParams());
        body.keep = resolve.dataset.keep;
        await call("/v1/conflicts/" + encodeURIComponent(resolve.dataset.conflictId) + "/resolve", null, {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
        });
        refresh();
      } catch (err) { showError(err.message); }
    } else if (requeue) {
      try {
        await call("/v1/ingestions/" + encodeURIComponent(requeue.dataset.ingestionId) + "/requeue", null, {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify(Object.fromEntries(scopeParams())),
        });
        refresh();
      } catch (err) { showError(err.message); }
    }
  });

  // Conversation view: open a conversation, close or reopen an item, pin a goal or task.
  $("conversation-form").addEventListener("submit", (ev) => { ev.preventDefault(); refresh(); });

  async function editWorking(path, method, body) {
    const conv = encodeURIComponent($("conversation").value.trim());
    try {
      await call("/v1/conversations/" + conv + "/working" + path, null, {
        method, headers: { "Content-Type": "application/json" },
        body: JSON.stringify(Object.assign(Object.fromEntries(scopeParams()), body)),
      });
      refresh();
    } catch (err) { showError(err.message); }
  }

  document.addEventListener("click", (ev) => {
    const btn = ev.target.closest("button.work-status");
    if (btn) editWorking("/items/" + encodeURIComponent(btn.dataset.itemId), "PATCH", { status: btn.dataset.status });
  });

  document.addEventListener("submit", (ev) => {
    if (ev.target.id !== "pin-form") return;
    ev.preventDefault();
    const text = $("pin-text").value.trim();
    if (text) editWorking("/items", "POST", { kind: $("pin-kind").value, text, pinned: true });
  });

  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && ev.target.matches("[data-memory-id], g[data-entity]")) {
      ev.target.dispatchEvent(new MouseEvent("click", { bubbles: true }));
    }
  });

  if (authOn && !key) {
    $("key-form").hidden = false;
    $("key").focus();
  } else {
    whoami().then(async (ok) => { if (ok) { await loadScopes(); refresh(); } });
  }
})();
