// Technician page: log in, search users, enrol from a photo or the camera,
// bulk import with progress, try identify; attendance by day, class group
// and person; the kiosk's status; accounts (admins). Talks only to this
// kiosk's API.
(function () {
  "use strict";
  var token = sessionStorage.getItem("kioskd_token") || "";
  var current = null; // the user being enrolled
  var me = null;      // the account logged in
  function $(id) { return document.getElementById(id); }
  function say(id, text, ok) { var el = $(id); el.textContent = text; el.className = "msg " + (ok ? "ok" : "error") + (el.classList.contains("big") ? " big" : ""); }
  function api(method, path, body, isForm) {
    var opts = { method: method, headers: {} };
    if (token) { opts.headers.Authorization = "Bearer " + token; }
    if (body !== undefined) {
      if (isForm) { opts.body = body; } else { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    }
    return fetch(path, opts).then(function (r) {
      if (r.status === 204) { return null; }
      return r.json().then(function (j) {
        if (!r.ok) {
          if (r.status === 401 && path !== "/api/v1/auth/login") { loggedOut(); }
          var e = new Error(j && j.error ? j.error.message : "HTTP " + r.status);
          e.code = j && j.error ? j.error.code : "";
          e.details = j && j.error ? j.error.details : null;
          throw e;
        }
        return j;
      });
    });
  }
  function loggedIn(acc) {
    $("login-section").hidden = true;
    $("app").hidden = false;
    $("logout").hidden = false;
    $("who").textContent = acc.email + " (" + acc.role + ")";
    me = acc;
    $("tab-accounts").hidden = acc.role !== "admin";
    search();
    galleryWarning();
    showTab(location.hash.slice(1));
  }
  function loggedOut() {
    token = "";
    sessionStorage.removeItem("kioskd_token");
    $("login-section").hidden = false;
    $("app").hidden = true;
    $("logout").hidden = true;
    $("who").textContent = "";
    $("tech-preview").removeAttribute("src");
  }
  $("login-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    api("POST", "/api/v1/auth/login", { email: $("login-email").value, password: $("login-password").value })
      .then(function (r) { token = r.token; sessionStorage.setItem("kioskd_token", token); say("login-msg", "", true); loggedIn(r.account); })
      .catch(function (e) { say("login-msg", e.message); });
  });
  // First run: while no account exists, a browser on the kiosk itself
  // creates the first admin instead of logging in.
  api("GET", "/api/v1/setup").then(function (st) {
    if (!st.needed || token) { return; }
    if (st.allowed) {
      $("setup-section").hidden = false;
      $("login-section").hidden = true;
    } else {
      say("login-msg", "No account exists yet: create the first admin on the kiosk itself (http://127.0.0.1:8080/technician) or with `kioskd admin add`.");
    }
  }).catch(function () {});
  $("setup-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    if ($("setup-password").value !== $("setup-password2").value) { say("setup-msg", "The two passwords differ."); return; }
    api("POST", "/api/v1/setup", { email: $("setup-email").value, password: $("setup-password").value })
      .then(function (r) {
        token = r.token; sessionStorage.setItem("kioskd_token", token);
        $("setup-section").hidden = true; say("setup-msg", "", true); loggedIn(r.account);
      })
      .catch(function (e) { say("setup-msg", e.message); });
  });
  $("logout").addEventListener("click", function () { api("POST", "/api/v1/auth/logout").finally(loggedOut); });

  function cell(tr, text) { var td = document.createElement("td"); td.textContent = text || ""; tr.appendChild(td); return td; }
  function search() {
    var q = encodeURIComponent($("search-q").value);
    api("GET", "/api/v1/users?limit=50&q=" + q).then(function (page) {
      var tb = $("users").querySelector("tbody");
      tb.textContent = "";
      page.items.forEach(function (u) {
        var tr = document.createElement("tr");
        cell(tr, u.full_name); cell(tr, u.email); cell(tr, u.external_id); cell(tr, u.role); cell(tr, u.class_group);
        var b = document.createElement("button");
        b.textContent = "Enrol"; b.className = "enrol-button"; b.dataset.email = u.email;
        b.addEventListener("click", function () { pick(u); });
        cell(tr, "").appendChild(b);
        tb.appendChild(tr);
      });
      say("users-msg", page.total + " user(s)", true);
    }).catch(function (e) { say("users-msg", e.message); });
  }
  $("search-form").addEventListener("submit", function (ev) { ev.preventDefault(); search(); });
  $("new-user-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    api("POST", "/api/v1/users", { full_name: $("nu-name").value, email: $("nu-email").value, external_id: $("nu-ext").value,
      role: $("nu-role").value, class_group: $("nu-class").value })
      .then(function (u) { say("users-msg", "Created " + u.full_name, true); $("search-q").value = u.email; search(); pick(u); })
      .catch(function (e) { say("users-msg", e.message); });
  });

  function pick(u) {
    current = u;
    $("similar").hidden = true;
    $("enrol-section").hidden = false;
    $("enrol-name").textContent = u.full_name;
    say("enrol-msg", "", true);
    $("tech-preview").src = "/kiosk/preview.mjpeg?t=" + Date.now();
    faces();
  }
  function faces() {
    api("GET", "/api/v1/users/" + encodeURIComponent(current.id) + "/faces").then(function (r) {
      var ul = $("faces"); ul.textContent = "";
      r.items.forEach(function (f) {
        var li = document.createElement("li");
        li.textContent = f.source + " face, " + new Date(f.created_at).toLocaleString() + " ";
        var b = document.createElement("button"); b.textContent = "Delete";
        b.addEventListener("click", function () {
          api("DELETE", "/api/v1/users/" + encodeURIComponent(current.id) + "/faces/" + encodeURIComponent(f.id)).then(faces)
            .catch(function (e) { say("enrol-msg", e.message); });
        });
        li.appendChild(b); ul.appendChild(li);
      });
    }).catch(function (e) { say("enrol-msg", e.message); });
  }
  // The gallery's calibration warns when face-only identification cannot
  // reach the target false-match rate here.
  function galleryWarning() {
    api("GET", "/api/v1/status").then(function (st) {
      var w = st.calibration && st.calibration.warning;
      $("gallery-warning").textContent = w || "";
      $("gallery-warning").hidden = !w;
    }).catch(function () {});
  }
  function enrolled(r) {
    var n = r && r.samples ? r.samples.length : 1;
    $("similar").hidden = true; say("enrol-msg", "Enrolled " + current.full_name + (n > 1 ? " (" + n + " samples)" : "") + ".", true); faces(); galleryWarning();
  }
  // enrolFailed shows a possible duplicate's similar person with a button
  // that repeats the enrolment confirming a different person.
  function enrolFailed(e, retry) {
    if (e.code !== "possible_duplicate" || !e.details) { say("enrol-msg", e.message); $("similar").hidden = true; return; }
    say("enrol-msg", "A similar person is already enrolled: look below.");
    var d = e.details;
    $("similar-text").textContent = "This face resembles " + d.name + " (" + d.email + ", " + d.photos + " photo" + (d.photos === 1 ? "" : "s") +
      ") at distance " + d.distance + ". If " + current.full_name + " is a different person, confirm.";
    $("similar").hidden = false;
    $("similar-confirm").onclick = function () { $("similar").hidden = true; say("enrol-msg", "Enrolling…", true); retry(d.user_id); };
  }
  $("similar-cancel").addEventListener("click", function () { $("similar").hidden = true; });
  function upload(confirm) {
    var fd = new FormData(); fd.append("image", $("enrol-file").files[0]);
    if (confirm) { fd.append("confirm_different", confirm); }
    api("POST", "/api/v1/users/" + encodeURIComponent(current.id) + "/faces", fd, true).then(enrolled)
      .catch(function (e) { enrolFailed(e, upload); });
  }
  function capture(confirm) {
    var q = confirm ? "?confirm_different=" + encodeURIComponent(confirm) : "";
    api("POST", "/api/v1/users/" + encodeURIComponent(current.id) + "/faces/capture" + q).then(enrolled)
      .catch(function (e) { enrolFailed(e, capture); });
  }
  $("enrol-file-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    $("similar").hidden = true;
    say("enrol-msg", "Enrolling…", true);
    upload("");
  });
  $("enrol-capture").addEventListener("click", function () {
    $("similar").hidden = true;
    say("enrol-msg", "Look at the camera…", true);
    capture("");
  });

  function download(path, name) {
    return fetch(path, { headers: { Authorization: "Bearer " + token } }).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.blob();
    }).then(function (b) {
      var a = document.createElement("a"); a.href = URL.createObjectURL(b); a.download = name; a.click();
    });
  }
  $("template-link").addEventListener("click", function (ev) { ev.preventDefault(); download("/api/v1/import/template.xlsx", "kioskd-import-template.xlsx"); });
  $("import-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var fd = new FormData();
    fd.append("sheet", $("import-sheet").files[0]);
    if ($("import-photos").files[0]) { fd.append("photos", $("import-photos").files[0]); }
    $("import-result").hidden = true;
    say("import-msg", "Uploading…", true);
    api("POST", "/api/v1/import", fd, true).then(function (job) { poll(job.id); })
      .catch(function (e) { say("import-msg", e.message); });
  });
  function poll(id) {
    api("GET", "/api/v1/import/" + encodeURIComponent(id)).then(function (j) {
      var p = $("import-progress"); p.hidden = false; p.max = Math.max(1, j.valid); p.value = j.state === "done" ? p.max : j.encoded;
      var counts = Object.keys(j.counts).map(function (k) { return k + ": " + j.counts[k]; }).join(", ");
      if (j.state === "done") {
        say("import-msg", "Done. " + counts, true);
        var a = $("import-result"); a.hidden = false; a.href = "#";
        a.onclick = function (ev) { ev.preventDefault(); download(j.result_url, "import-result.xlsx"); };
        search();
      } else if (j.state === "failed") {
        say("import-msg", "Failed: " + j.error);
      } else {
        say("import-msg", j.state + ": " + j.encoded + " of " + j.valid + " photos", true);
        setTimeout(function () { poll(id); }, 500);
      }
    }).catch(function (e) { say("import-msg", e.message); });
  }
  $("identify-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var fd = new FormData(); fd.append("image", $("identify-file").files[0]);
    var xid = $("identify-id").value.trim();
    if (xid) { fd.append("external_id", xid); }
    api("POST", "/api/v1/identify", fd, true).then(function (r) {
      var d = r.distance !== undefined ? " (distance " + r.distance.toFixed(2) + (r.threshold !== undefined ? ", this person's threshold " + r.threshold.toFixed(2) : "") + ")" : "";
      say("identify-msg", (r.result === "match" ? "Match: " + r.name : r.message) + d, r.result === "match");
    }).catch(function (e) { say("identify-msg", e.message); });
  });

  // Tabs: the page shown follows the address's #fragment.
  function showTab(name) {
    if (!$("page-" + name) || (name === "accounts" && (!me || me.role !== "admin"))) { name = "users"; }
    Array.prototype.forEach.call(document.querySelectorAll(".page"), function (p) { p.hidden = p.id !== "page-" + name; });
    Array.prototype.forEach.call(document.querySelectorAll("#tabs a"), function (a) { a.classList.toggle("active", a.dataset.tab === name); });
    if (name === "attendance") { attendance(); }
    if (name === "status") { kioskStatus(); }
    if (name === "accounts") { accounts(); }
  }
  window.addEventListener("hashchange", function () { if (me) { showTab(location.hash.slice(1)); } });

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function isoDay(d) { return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()); }
  // dayRange is the local day as from/to query parameters (RFC 3339, UTC).
  function dayRange(day) {
    var p = day.split("-"), from = new Date(+p[0], +p[1] - 1, +p[2]), to = new Date(+p[0], +p[1] - 1, +p[2] + 1);
    return "from=" + encodeURIComponent(from.toISOString()) + "&to=" + encodeURIComponent(to.toISOString());
  }
  function when(t) { return t ? new Date(t).toLocaleString() : "never"; }
  function timeOf(t) { return new Date(t).toLocaleTimeString(); }
  function sent(ev) { return ev.sync_state === "acked" ? "yes" : ev.sync_state; }

  // Attendance: the day's events, filtered by class group and person.
  var attUsersLoaded = false;
  function attendanceQuery() {
    var q = dayRange($("att-day").value);
    if ($("att-class").value.trim()) { q += "&class_group=" + encodeURIComponent($("att-class").value.trim()); }
    if ($("att-user").value) { q += "&user_id=" + encodeURIComponent($("att-user").value); }
    return q;
  }
  function attendance() {
    if (!$("att-day").value) { $("att-day").value = isoDay(new Date()); }
    if (!attUsersLoaded) {
      attUsersLoaded = true;
      api("GET", "/api/v1/users?limit=500").then(function (page) {
        page.items.forEach(function (u) {
          var o = document.createElement("option"); o.value = u.id; o.textContent = u.full_name + " (" + u.email + ")";
          $("att-user").appendChild(o);
        });
      }).catch(function (e) { say("att-msg", e.message); });
    }
    api("GET", "/api/v1/attendance/rows?limit=500&" + attendanceQuery()).then(function (page) {
      var tb = $("att-table").querySelector("tbody");
      tb.textContent = "";
      page.items.forEach(function (r) {
        var tr = document.createElement("tr");
        cell(tr, timeOf(r.time)); cell(tr, r.name || "(deleted: " + r.user_id + ")"); cell(tr, r.email); cell(tr, r.class_group);
        cell(tr, r.liveness); cell(tr, sent(r));
        tb.appendChild(tr);
      });
      say("att-msg", page.total + " event(s)" + (page.total > page.items.length ? ", the first " + page.items.length + " shown: export for all" : ""), true);
    }).catch(function (e) { say("att-msg", e.message); });
  }
  $("att-form").addEventListener("submit", function (ev) { ev.preventDefault(); attendance(); });
  $("att-export").addEventListener("click", function () {
    if (!$("att-day").value) { $("att-day").value = isoDay(new Date()); }
    download("/api/v1/attendance/export.xlsx?" + attendanceQuery(), "attendance-" + $("att-day").value + ".xlsx")
      .catch(function (e) { say("att-msg", e.message); });
  });

  // Status: camera, models, sync, outbox, calibration, last events.
  function kv(tb, name, value, bad) {
    var tr = document.createElement("tr"), th = document.createElement("th");
    th.textContent = name; tr.appendChild(th);
    var td = cell(tr, value); if (bad) { td.className = "bad"; }
    tb.appendChild(tr);
  }
  function kioskStatus() {
    api("GET", "/api/v1/status").then(function (st) {
      var tb = $("st-table").querySelector("tbody"), cam = st.camera || {}, sy = st.sync || {}, mo = st.models || {};
      tb.textContent = "";
      kv(tb, "Kiosk", st.device_id + ", version " + st.version + ", up " + Math.round(st.uptime_seconds / 60) + " min");
      kv(tb, "Ready", st.ready ? "yes" : "no", !st.ready);
      if (cam.state) {
        kv(tb, "Camera", cam.state + " since " + when(cam.since) + (cam.last_error ? " - last error: " + cam.last_error : ""), cam.state !== "running" && cam.state !== "ended");
        kv(tb, "Camera source", cam.source);
        kv(tb, "Last frame", when(cam.last_frame_at));
        kv(tb, "Frames", cam.frames + " read, " + cam.processed + " examined, " + cam.dropped + " dropped, " + cam.reopens + " reopens");
        kv(tb, "Recognition", cam.encodings + " encodings, " + cam.events + " recorded, " + cam.unknown + " unknown, " + cam.liveness_failed + " liveness refusals");
      } else {
        kv(tb, "Camera", "not configured", true);
      }
      kv(tb, "Models", mo.loaded ? "loaded (" + mo.name + ")" : "not loaded", !mo.loaded);
      kv(tb, "People", st.counts.users + " users, " + st.counts.encodings + " faces, " + st.counts.gallery + " in the gallery");
      if (sy.configured === false) {
        kv(tb, "Sync", "not configured");
      } else {
        kv(tb, "Sync", sy.state + " (" + sy.broker + ")" + (sy.last_error ? " - last error: " + sy.last_error + " at " + when(sy.last_error_at) : ""), !sy.connected);
        kv(tb, "Acknowledged by central", String(sy.counters ? sy.counters.acked : 0));
      }
      kv(tb, "Outbox", st.counts.outbox + " message(s) waiting for central", st.counts.outbox > 100);
      var w = st.calibration && st.calibration.warning;
      $("st-calibration").textContent = w || ""; $("st-calibration").hidden = !w;
      say("st-msg", "As of " + when(st.time), true);
    }).catch(function (e) { say("st-msg", e.message); });
    // The day's last ten events: ask for the count, then the tail.
    var q = dayRange(isoDay(new Date()));
    api("GET", "/api/v1/attendance/rows?limit=1&" + q).then(function (p) {
      return api("GET", "/api/v1/attendance/rows?limit=10&offset=" + Math.max(0, p.total - 10) + "&" + q);
    }).then(function (page) {
      var tb = $("st-events").querySelector("tbody");
      tb.textContent = "";
      page.items.reverse().forEach(function (r) {
        var tr = document.createElement("tr");
        cell(tr, timeOf(r.time)); cell(tr, r.name || r.user_id); cell(tr, sent(r));
        tb.appendChild(tr);
      });
      if (!page.items.length) { var tr = document.createElement("tr"); cell(tr, "No attendance today yet."); tb.appendChild(tr); }
    }).catch(function (e) { say("st-msg", e.message); });
  }
  $("st-refresh").addEventListener("click", kioskStatus);

  // Accounts (admins): role, disable or enable, new password, unlock.
  function accountAction(a, label, run) {
    var b = document.createElement("button"); b.textContent = label; b.dataset.email = a.email;
    b.addEventListener("click", function () {
      // The message comes once the table shows the change.
      run().then(function (msg) { return accounts().then(function () { say("acc-msg", msg, true); }); })
        .catch(function (e) { say("acc-msg", e.message); });
    });
    return b;
  }
  function accounts() {
    return api("GET", "/api/v1/accounts").then(function (r) {
      var tb = $("acc-table").querySelector("tbody");
      tb.textContent = "";
      r.items.forEach(function (a) {
        var path = "/api/v1/accounts/" + encodeURIComponent(a.email);
        var tr = document.createElement("tr");
        cell(tr, a.email); cell(tr, a.role); cell(tr, a.disabled ? "disabled" : "active"); cell(tr, a.source);
        var td = cell(tr, "");
        var other = a.role === "admin" ? "technician" : "admin";
        td.appendChild(accountAction(a, "Make " + other, function () {
          return api("PUT", path, { role: other }).then(function () { return a.email + " is now " + other + "."; });
        }));
        td.appendChild(accountAction(a, a.disabled ? "Enable" : "Disable", function () {
          return api("PUT", path, { disabled: !a.disabled }).then(function () { return a.email + (a.disabled ? " enabled." : " disabled."); });
        }));
        td.appendChild(accountAction(a, "Reset password", function () {
          var pw = window.prompt("New password for " + a.email);
          if (!pw) { return Promise.reject(new Error("Password not changed.")); }
          return api("PUT", path, { password: pw }).then(function () { return "Password of " + a.email + " changed."; });
        }));
        td.appendChild(accountAction(a, "Unlock", function () {
          return api("POST", path + "/unlock").then(function () { return a.email + " can log in again at once."; });
        }));
        tb.appendChild(tr);
      });
    }).catch(function (e) { say("acc-msg", e.message); });
  }
  $("acc-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    api("POST", "/api/v1/accounts", { email: $("acc-email").value, role: $("acc-role").value, password: $("acc-password").value })
      .then(function (a) { $("acc-password").value = ""; return accounts().then(function () { say("acc-msg", "Created " + a.email + ".", true); }); })
      .catch(function (e) { say("acc-msg", e.message); });
  });

  if (token) { api("GET", "/api/v1/me").then(loggedIn).catch(loggedOut); }
})();
