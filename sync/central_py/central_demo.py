"""A central registry for one site, built on kiosk_central, as a Django
project would wire it: users come from model instances (here stand-ins with
the same attributes), encodings from face_recognition, uplink messages go to
an idempotent store (here a dict keyed by the message key, as a unique
constraint would).

It is also the test suite's driver (sync/central_py_test.go): it prints one
JSON line per event on stdout and takes JSON-line commands on stdin:

  {"cmd": "command", "device": "k1", "name": "publish_status"}
  {"cmd": "account", "device": "k1", "email": "...", "role": "technician",
   "password_hash": "pbkdf2_sha256$...", "version": 1}
  {"cmd": "config", "device": "k1", "doc": {...}}
  {"cmd": "timetable", "device": "k1", "sessions": [{"id": "...", "class_group": "SE-1A",
   "room": "Lab 2", "trainer": "...", "start": "<ISO 8601>", "end": "...", "late_after": "..."}]}
  {"cmd": "quit"}

Usage: central_demo.py --broker 127.0.0.1:1883 --site s1 --seed-hex <64 hex>
       --people people.json [--timetable sessions.json]
people.json: [{"id": "1", "email": "...", "first_name": "...", "last_name": "...",
               "role": "trainee", "class_group": "SE-1A", "photo": "a.jpg",
               "updated_at": "2025-03-14T07:59:00+00:00"}, ...]
"""

import argparse
import json
import sys
import threading
from datetime import datetime
from types import SimpleNamespace

import face_recognition

import kiosk_central as kc

out_lock = threading.Lock()


def emit(event, **fields):
    with out_lock:
        print(json.dumps(dict(event=event, **fields)), flush=True)


def django_users(path):
    """Stand-ins for Django model instances: a user with the fields a
    registry keeps and its FaceEncoding rows (here computed from a photo
    with face_recognition, as the registry's enrolment view would)."""
    users = []
    for p in json.load(open(path)):
        image = face_recognition.load_image_file(p["photo"])
        encs = face_recognition.face_encodings(image)
        if len(encs) != 1:
            raise SystemExit("%s: %d faces, want 1" % (p["photo"], len(encs)))
        users.append(SimpleNamespace(
            pk=p["id"], email=p["email"], first_name=p["first_name"], last_name=p["last_name"],
            role=p.get("role", "trainee"), is_active=True, class_group=p.get("class_group", ""),
            updated_at=datetime.fromisoformat(p["updated_at"]),
            encodings=[SimpleNamespace(pk="%s-1" % p["id"], vector=encs[0])]))
    return users


def to_record(u):
    """The wire record of a user; its version is updated_at in microseconds,
    so every save makes a newer version."""
    return kc.user_record(
        u.pk, int(u.updated_at.timestamp() * 1_000_000), u.email,
        ("%s %s" % (u.first_name, u.last_name)).strip(), role=u.role,
        status="active" if u.is_active else "inactive", class_group=u.class_group,
        updated_at=u.updated_at, encodings=[(e.pk, e.vector) for e in u.encodings])


def parse_session(s):
    """A class session with its ISO 8601 times parsed (a Django model's
    DateTimeFields would already be datetimes)."""
    return dict(s, start=datetime.fromisoformat(s["start"]), end=datetime.fromisoformat(s["end"]),
                late_after=datetime.fromisoformat(s["late_after"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", required=True)
    ap.add_argument("--site", required=True)
    ap.add_argument("--seed-hex", required=True, help="central's Ed25519 seed (32 bytes, hex)")
    ap.add_argument("--people", required=True)
    ap.add_argument("--timetable", help="JSON file of class sessions (ISO 8601 times) sent to every kiosk before its snapshot")
    a = ap.parse_args()

    users = django_users(a.people)
    records = [to_record(u) for u in users]
    emit("encoded", users=[{"id": r["id"], "descriptor": kc.decode_descriptor(r["encodings"][0]["descriptor"])}
                           for r in records])

    stored = {}  # key -> message: the application's table, unique on key

    def store(doc):
        if doc["key"] in stored:
            return  # a resend: already stored, acked again
        stored[doc["key"]] = doc
        p = doc["payload"]
        if doc["type"] == "enrolment":
            descs = [kc.decode_descriptor(e["descriptor"], e.get("dtype", "float32")) for e in p.get("encodings", [])]
            emit("enrolment", device=doc["device"], key=doc["key"], op=p["op"], id=p["id"],
                 version=p["version"], email=p.get("email", ""), descriptors=descs)
        else:
            emit(doc["type"], device=doc["device"], key=doc["key"], historical=doc["historical"], payload=p)

    sessions = None
    if a.timetable:
        sessions = [parse_session(s) for s in json.load(open(a.timetable))]
    host, port = a.broker.rsplit(":", 1)
    central = kc.Central(host, int(port), a.site, kc.load_private_key(seed=bytes.fromhex(a.seed_hex)),
                         live_users=lambda: records, timetable_for=lambda device: sessions)
    central.on_attendance = central.on_enrolment = central.on_unknown = central.on_session_summary = store
    central.on_status = lambda doc, retained: emit("status", device=doc["device"], state=doc["state"],
                                                   retained=retained, outbox_len=doc["outbox_len"])
    central.on_command_result = lambda doc: emit("command_result", device=doc["device"], purpose=doc["purpose"],
                                                 name=doc.get("name", ""), ok=doc["ok"], error=doc.get("error", ""))
    central.connect()
    seq = central.publish_users(records)
    emit("published", seq=seq, users=len(records))

    for line in sys.stdin:
        c = json.loads(line)
        if c["cmd"] == "quit":
            break
        if c["cmd"] == "command":
            central.send_command(c["device"], c["name"], c.get("args"))
        elif c["cmd"] == "account":
            central.send_account(c["device"], c["email"], c["role"], c["password_hash"], c["version"])
        elif c["cmd"] == "config":
            central.send_config(c["device"], c["doc"])
        elif c["cmd"] == "timetable":
            central.send_timetable(c["device"], [parse_session(s) for s in c["sessions"]])
        emit("sent", cmd=c["cmd"])
    central.close()
    emit("closed")


if __name__ == "__main__":
    main()
