"""Central's side of the kioskd MQTT contract (docs/mqtt.md, docs/asyncapi.yaml).

A reference client for the central registry (for instance a Django project):
it publishes users with their face encodings, signs commands, account pushes
and configuration with central's Ed25519 key, receives attendance, enrolments,
unknown-face counts, statuses and command results, and acknowledges uplink
messages once the application has stored them.

Dependencies: paho-mqtt 2.x and cryptography (PyPI); numpy only for
encodings given as numpy arrays (face_recognition returns those).
"""

import base64
import hashlib
import json
import logging
import struct
import threading
import time
import uuid
from datetime import datetime, timezone

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SCHEMA = 1
MODEL = "dlib_face_recognition_resnet_model_v1"
MAX_USERS_PER_MESSAGE = 5000
MAX_ACK_KEYS = 2000
CHUNK_BYTES = 512 * 1024
UPLINK_KINDS = ("attendance", "enrolment", "unknown", "session_summary")


def rfc3339(dt):
    """Formats a datetime as RFC 3339 UTC (naive datetimes are taken as UTC)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def encode_descriptor(encoding):
    """Returns a face_recognition encoding (128 numbers) as the wire's base64
    of 128 little-endian float32 (dtype "float32")."""
    values = [float(v) for v in encoding]
    if len(values) != 128:
        raise ValueError("a descriptor has 128 numbers, got %d" % len(values))
    return base64.b64encode(struct.pack("<128f", *values)).decode("ascii")


def decode_descriptor(value, dtype="float32"):
    """Returns the 128 floats of a wire descriptor (base64 float32/float64 or
    a JSON array)."""
    if isinstance(value, list):
        return [float(v) for v in value]
    raw = base64.b64decode(value)
    fmt = "<128d" if dtype == "float64" else "<128f"
    return list(struct.unpack(fmt, raw))


def user_record(user_id, version, email, full_name, role="trainee", status="active",
                external_id="", department="", programme="", class_group="",
                updated_at=None, encodings=()):
    """Builds an upsert record (WireUser). encodings is a list of
    (encoding_id, 128 numbers) pairs; they replace the user's central
    encodings on every kiosk. version must grow with every change, e.g.
    int(updated_at.timestamp() * 1e6)."""
    rec = {"op": "upsert", "id": str(user_id), "version": int(version), "email": email,
           "full_name": full_name, "role": role, "status": status}
    for k, v in (("external_id", external_id), ("department", department),
                 ("programme", programme), ("class_group", class_group)):
        if v:
            rec[k] = v
    if updated_at is not None:
        rec["updated_at"] = rfc3339(updated_at)
    rec["encodings"] = [{"id": str(eid), "dtype": "float32", "model": MODEL,
                         "descriptor": encode_descriptor(enc)} for eid, enc in encodings]
    return rec


def delete_record(user_id, version):
    """Builds a tombstone: the user is deleted on every kiosk."""
    return {"op": "delete", "id": str(user_id), "version": int(version)}


def signing_input(purpose, device, topic, seq, issued_at, expires_at, payload):
    """The bytes central signs (sync.SigningInput)."""
    return ("kioskd-signed-v1\n%s\n%s\n%s\n%d\n%d\n%d\n%s" % (
        purpose, device, topic, seq, issued_at, expires_at,
        hashlib.sha256(payload).hexdigest())).encode("utf-8")


class Central:
    """One site's central registry on an MQTT broker.

    Handlers (set before connect) run on paho's network thread; an uplink
    handler must store the message durably (deduplicating by its "key",
    e.g. a unique constraint) and return: the key is then acknowledged to
    the kiosk, which deletes it from its outbox. A handler that raises
    leaves the message unacknowledged; the kiosk sends it again.

    seq is the site's users sequence: load it from your database before
    connect and store it after every publish_users (it must never go back).
    """

    def __init__(self, host, port, site, private_key, prefix="kiosk", client_id=None,
                 username=None, password=None, tls=None, seq=0, live_users=None, timetable_for=None):
        self.site, self.prefix, self.seq = site, prefix, seq
        self.key = private_key
        # live_users() returns every live user record (WireUser dicts): the
        # snapshot a kiosk asks for at first start, after a gap or overflow.
        self.live_users = live_users or (lambda: [])
        # timetable_for(device) returns the device's class sessions (see
        # send_timetable) or None: sent, signed, before every snapshot, so a
        # kiosk that (re)joins knows its sessions before it sees anyone.
        self.timetable_for = timetable_for
        self.on_attendance = self.on_enrolment = self.on_unknown = self.on_session_summary = None
        self.on_status = self.on_command_result = self.on_heartbeat = None
        self._sig_seq = {}
        self._acks = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                   client_id=client_id or "central-" + site, clean_session=False)
        if username:
            self._client.username_pw_set(username, password)
        if tls:
            self._client.tls_set(**tls)  # ca_certs, certfile, keyfile
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._host, self._port = host, port
        self._acker = threading.Thread(target=self._ack_loop, daemon=True)

    # --- connection -----------------------------------------------------

    def connect(self, timeout=15):
        """Connects, subscribes to every kiosk's uplink of the site, and
        starts the network and ack threads."""
        self._client.connect(self._host, self._port, keepalive=30)
        self._client.loop_start()
        self._acker.start()
        if not self._connected.wait(timeout):
            raise TimeoutError("central: no connection to %s:%d" % (self._host, self._port))

    def close(self):
        self._stop.set()
        self._acker.join(timeout=2)
        self._flush_acks()
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            return
        client.subscribe("%s/%s/device/+/up/+" % (self.prefix, self.site), qos=1)
        self._connected.set()

    def _topic(self, device, direction, kind):
        return "%s/%s/device/%s/%s/%s" % (self.prefix, self.site, device, direction, kind)

    def _publish(self, topic, doc, retain=False):
        info = self._client.publish(topic, json.dumps(doc, separators=(",", ":")), qos=1, retain=retain)
        info.wait_for_publish(timeout=10)

    # --- users ----------------------------------------------------------

    def publish_users(self, records):
        """Publishes records (upserts and deletes) in users messages of at
        most 5,000, each with the next site sequence, then the retained
        head. Returns the new sequence (store it)."""
        for i in range(0, len(records), MAX_USERS_PER_MESSAGE):
            self.seq += 1
            self._publish("%s/%s/registry/users" % (self.prefix, self.site),
                          {"schema": SCHEMA, "type": "users", "site": self.site, "seq": self.seq,
                           "issued_at": rfc3339(datetime.now(timezone.utc)),
                           "users": records[i:i + MAX_USERS_PER_MESSAGE]})
        self.publish_head()
        return self.seq

    def publish_head(self):
        """Publishes the retained head: kiosks behind it ask for a snapshot."""
        self._publish("%s/%s/registry/head" % (self.prefix, self.site),
                      {"schema": SCHEMA, "type": "head", "site": self.site, "seq": self.seq,
                       "issued_at": rfc3339(datetime.now(timezone.utc))}, retain=True)

    def _answer_snapshot(self, device, req):
        sessions = self.timetable_for(device) if self.timetable_for else None
        if sessions is not None:
            self.send_timetable(device, sessions)
        seq, users = self.seq, list(self.live_users())  # read together in your database
        chunks, cur, size = [], [], 0
        for u in users:
            n = len(json.dumps(u)) + 1
            if cur and (size + n > CHUNK_BYTES or len(cur) >= MAX_USERS_PER_MESSAGE):
                chunks.append(cur)
                cur, size = [], 0
            cur.append(u)
            size += n
        chunks.append(cur)
        snap_id = str(uuid.uuid4())
        for i, ch in enumerate(chunks):
            self._publish(self._topic(device, "down", "snapshot"),
                          {"schema": SCHEMA, "type": "snapshot", "site": self.site, "device": device,
                           "request_id": req["request_id"], "snapshot_id": snap_id, "seq": seq,
                           "chunk": i, "chunks": len(chunks), "total": len(users), "users": ch})

    # --- signed messages --------------------------------------------------

    def _next_sig_seq(self, device, purpose):
        # Microseconds since the epoch: strictly increasing across central
        # restarts without storing anything (kiosks persist the last seen).
        with self._lock:
            last = self._sig_seq.get((device, purpose), 0)
            seq = max(last + 1, time.time_ns() // 1000)
            self._sig_seq[(device, purpose)] = seq
            return seq

    def signed(self, device, purpose, inner, ttl=600):
        """Returns the signed envelope of inner (a dict) for device and
        purpose ("command", "account", "config" or "timetable")."""
        topic = self._topic(device, "down", purpose)
        payload = json.dumps(inner, separators=(",", ":")).encode("utf-8")
        seq = self._next_sig_seq(device, purpose)
        issued = int(time.time())
        expires = issued + int(ttl)
        sig = self.key.sign(signing_input(purpose, device, topic, seq, issued, expires, payload))
        return {"schema": SCHEMA, "type": "signed", "purpose": purpose, "device": device, "topic": topic,
                "seq": seq, "issued_at": issued, "expires_at": expires,
                "payload": base64.b64encode(payload).decode("ascii"),
                "sig": base64.b64encode(sig).decode("ascii")}

    def send_command(self, device, name, args=None):
        """Signs and sends a command (request_snapshot, publish_status,
        resend_outbox, backup, retention)."""
        inner = {"name": name}
        if args:
            inner["args"] = args
        self._publish(self._topic(device, "down", "command"), self.signed(device, "command", inner))

    def send_account(self, device, email, role, password_hash, version, email_verified=True,
                     disabled=False, op="upsert"):
        """Signs and sends a local account (Django's password hash as is)."""
        inner = {"op": op, "email": email, "role": role, "password_hash": password_hash,
                 "email_verified": email_verified, "disabled": disabled, "version": int(version)}
        self._publish(self._topic(device, "down", "account"), self.signed(device, "account", inner))

    def send_timetable(self, device, sessions, ttl=600):
        """Signs and sends the kiosk's class timetable; it replaces the last.
        sessions: dicts with id, class_group, room, trainer and datetimes
        start, end, late_after (attendance from late_after on is late)."""
        doc = {"sessions": [dict(s, start=rfc3339(s["start"]), end=rfc3339(s["end"]),
                                 late_after=rfc3339(s["late_after"])) for s in sessions]}
        self._publish(self._topic(device, "down", "timetable"), self.signed(device, "timetable", doc, ttl))

    def send_config(self, device, doc):
        """Signs and sends a configuration document (a dict)."""
        self._publish(self._topic(device, "down", "config"), self.signed(device, "config", doc))

    # --- uplink -----------------------------------------------------------

    def _on_message(self, client, userdata, msg):
        parts = msg.topic.split("/")
        if len(parts) != 6 or parts[2] != "device" or parts[4] != "up":
            return
        device, kind = parts[3], parts[5]
        try:
            doc = json.loads(msg.payload)
        except ValueError:
            return
        if doc.get("schema") != SCHEMA or doc.get("device") != device:
            return
        if kind in UPLINK_KINDS:
            handler = getattr(self, "on_" + kind)
            if handler is None:
                return  # not acked: the kiosk keeps it until someone stores it
            try:
                handler(doc)
            except Exception:  # not stored: not acked; the kiosk sends it again
                logging.getLogger(__name__).exception("central: %s %s from %s not stored", kind, doc.get("key"), device)
                return
            with self._lock:
                self._acks.setdefault(device, []).append(doc["key"])
        elif kind == "snapshot_request":
            threading.Thread(target=self._answer_snapshot, args=(device, doc), daemon=True).start()
        elif kind == "status" and self.on_status:
            self.on_status(doc, msg.retain)
        elif kind == "command_result" and self.on_command_result:
            self.on_command_result(doc)
        elif kind == "heartbeat" and self.on_heartbeat:
            self.on_heartbeat(doc)

    def _ack_loop(self):
        while not self._stop.wait(0.02):  # batch acks every 20 ms
            self._flush_acks()

    def _flush_acks(self):
        with self._lock:
            pending, self._acks = self._acks, {}
        for device, keys in pending.items():
            for i in range(0, len(keys), MAX_ACK_KEYS):
                self._publish(self._topic(device, "down", "ack"),
                              {"schema": SCHEMA, "type": "ack", "device": device,
                               "keys": keys[i:i + MAX_ACK_KEYS]})


def load_private_key(path=None, seed=None):
    """Loads central's Ed25519 key from a PEM file (PKCS#8) or a 32-byte seed."""
    if seed is not None:
        return Ed25519PrivateKey.from_private_bytes(seed)
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def public_key_base64(private_key):
    """The value for the kiosk's sync.registry_public_key."""
    raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")
