// Kiosk screen: feedback from the pipeline over Server-Sent Events, in big
// words; the MJPEG preview is a plain <img>.
(function () {
  "use strict";
  var fb = document.getElementById("feedback");
  var img = document.getElementById("preview");
  var nocam = document.getElementById("nocam");
  var clock = document.getElementById("clock");
  var idleTimer = null;
  var words = {
    idle: "Look at the camera",
    one_person_please: "One person at a time",
    move_closer: "Move closer",
    too_dark: "Too dark",
    too_bright: "Too bright",
    hold_still: "Hold still",
    look_at_camera: "Look at the camera",
    recognised: "Welcome",
    unknown: "Not recognised",
    liveness_failed: "Please try again",
    camera_lost: "Camera offline",
    need_id: "Show your ID card or type your ID",
    id_accepted: "Now look at the camera",
    unknown_id: "Unknown ID",
    verified: "ID verified",
    not_verified: "ID and face do not match"
  };
  // ID + face: the keypad opens when the kiosk asks for an ID (or on
  // "Type ID") and posts the typed ID to /kiosk/claim.
  var keypad = document.getElementById("keypad");
  var idInput = document.getElementById("id-input");
  var keypadTimer = null;
  // An external_id is free text (1-120 bytes, no control characters): the
  // keys type digits, letters and every printable ASCII symbol; anything
  // else comes from the ID card's QR code or a physical keyboard.
  var maxID = 120;
  var layers = {
    abc: ["1234567890", "QWERTYUIOP", "ASDFGHJKL-", "\u21e7ZXCVBNM/."],
    sym: ["1234567890", "!\"#$%&'()*", "+,:;<=>?@.", "[\\]^_`{|}~"]
  };
  var layer = "abc", lower = false;
  var keys = document.getElementById("keys");
  function layoutKeys() {
    keys.textContent = "";
    layers[layer].forEach(function (row) {
      Array.from(row).forEach(function (ch) {
        var b = document.createElement("button");
        b.type = "button";
        if (ch === "\u21e7") {
          b.setAttribute("data-key", "shift");
          b.setAttribute("aria-label", lower ? "Upper case" : "Lower case");
          b.className = lower ? "on" : "";
          b.textContent = lower ? "ABC" : "abc";
        } else {
          if (lower) { ch = ch.toLowerCase(); }
          b.setAttribute("data-key", ch);
          b.textContent = ch;
        }
        keys.appendChild(b);
      });
    });
    var lk = keypad.querySelector('[data-key="layer"]');
    lk.textContent = layer === "abc" ? "#+=" : "ABC";
    lk.setAttribute("aria-label", layer === "abc" ? "Symbols" : "Letters");
  }
  layoutKeys();
  function openKeypad(open) {
    keypad.hidden = !open;
    clearTimeout(keypadTimer);
    if (open) { keypadTimer = setTimeout(function () { openKeypad(false); }, 30000); }
    else { idInput.value = ""; }
  }
  document.getElementById("id-open").onclick = function () { openKeypad(keypad.hidden); };
  keypad.addEventListener("click", function (e) {
    var k = e.target.getAttribute && e.target.getAttribute("data-key");
    if (!k) { return; }
    if (k === "back") { idInput.value = Array.from(idInput.value).slice(0, -1).join(""); }
    else if (k === "shift") { lower = !lower; layoutKeys(); }
    else if (k === "layer") { layer = layer === "abc" ? "sym" : "abc"; layoutKeys(); }
    else if (new TextEncoder().encode(idInput.value + k).length <= maxID) { idInput.value += k; }
    openKeypad(true);
  });
  keypad.onsubmit = function (e) {
    e.preventDefault();
    var id = idInput.value.trim();
    if (!id) { return; }
    fetch("/kiosk/claim", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ id: id }) })
      .then(function (r) { return r.json().then(function (b) { return { ok: r.ok, b: b }; }); })
      .then(function (res) {
        if (res.ok) { openKeypad(false); show({ kind: "id_accepted", message: res.b.message }); }
        else { idInput.value = ""; show({ kind: "unknown_id", message: (res.b.error && res.b.error.message) || "Unknown ID" }); }
      })
      .catch(function () { show({ kind: "unknown_id", message: "Please try again" }); });
  };
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function hhmm(t) { var d = t ? new Date(t) : new Date(); return pad(d.getHours()) + ":" + pad(d.getMinutes()); }
  function show(f) {
    var text = f.message || words[f.kind] || "";
    if (!f.message && f.kind === "recognised" && f.name) { text = "Welcome, " + f.name + " - " + hhmm(f.time); }
    if (f.kind === "need_id" || f.kind === "not_verified") { openKeypad(true); }
    if (f.kind === "verified" || f.kind === "recognised") { openKeypad(false); }
    fb.textContent = text;
    fb.className = "feedback " + (f.kind || "idle");
    nocam.hidden = f.kind !== "camera_lost";
    clearTimeout(idleTimer);
    if (f.kind !== "idle" && f.kind !== "camera_lost") {
      idleTimer = setTimeout(function () { show({ kind: "idle" }); }, 6000);
    }
  }
  function connect() {
    var es = new EventSource("/kiosk/events");
    es.addEventListener("feedback", function (e) {
      try { show(JSON.parse(e.data)); } catch (err) { /* ignore a malformed event */ }
    });
    es.onerror = function () {
      show({ kind: "camera_lost", message: "Camera offline" });
      es.close();
      setTimeout(connect, 3000);
    };
  }
  img.onerror = function () {
    nocam.hidden = false;
    setTimeout(function () { img.src = "/kiosk/preview.mjpeg?t=" + Date.now(); }, 5000);
  };
  img.onload = function () { nocam.hidden = true; };
  setInterval(function () { clock.textContent = hhmm(); }, 1000);
  clock.textContent = hhmm();
  connect();
  // Start the endless MJPEG stream after the page has loaded, so that the
  // page's load event is not held up by it.
  window.addEventListener("load", function () { img.src = "/kiosk/preview.mjpeg"; });
})();
