// The token comes from the URL fragment (#token=...), which browsers never send to the server,
// or from the form; it is kept for this tab only (sessionStorage) and sent as a bearer token.
(function () {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("token")) {
    sessionStorage.setItem("obentchi-token", fragment.get("token"));
    history.replaceState(null, "", location.pathname);
  }
  const token = () => sessionStorage.getItem("obentchi-token");
  const status = document.getElementById("status");
  const panel = document.getElementById("panel");
  const login = document.getElementById("login");

  async function call(method, path) {
    const response = await fetch(path, { method, headers: { Authorization: "Bearer " + token() } });
    if (response.status === 401) {
      sessionStorage.removeItem("obentchi-token");
      login.hidden = false;
    }
    return response;
  }

  async function refresh() {
    if (!token()) { login.hidden = false; return; }
    const response = await call("GET", "/admin/dashboard/panel");
    if (!response.ok) { status.textContent = "Cannot load: HTTP " + response.status; return; }
    status.textContent = "";
    panel.innerHTML = await response.text();
    const input = document.getElementById("dead-filter");
    if (input) input.value = filter;
    applyFilter();
    document.body.dataset.loaded = "yes";
  }

  // Dead letters: retry puts one back on its queue, discard deletes it (both through the admin
  // API, so the token needs `write`).
  panel.addEventListener("click", async (event) => {
    const button = event.target.closest("button.retry, button.discard");
    if (!button) return;
    button.disabled = true;
    const action = button.classList.contains("retry") ? "retry" : "discard";
    const path = "/admin/queues/" + encodeURIComponent(button.dataset.queue) + "/dead-letters/" + encodeURIComponent(button.dataset.id) + "/" + action;
    const response = await call("POST", path);
    status.textContent = response.ok ? "" : action + " failed: HTTP " + response.status;
    await refresh();
  });

  // The filter keeps the dead letters whose queue, error or job text contains it; it survives
  // the refreshes.
  let filter = "";
  function applyFilter() {
    for (const row of panel.querySelectorAll("tr.dead-letter")) {
      row.hidden = filter !== "" && !row.textContent.toLowerCase().includes(filter);
    }
  }
  panel.addEventListener("input", (event) => {
    if (event.target.id !== "dead-filter") return;
    filter = event.target.value.trim().toLowerCase();
    applyFilter();
  });

  login.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("obentchi-token", document.getElementById("token").value.trim());
    login.hidden = true;
    refresh();
  });

  refresh();
  setInterval(refresh, 15000);
})();
