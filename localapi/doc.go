// Package localapi is kioskd's local management API and pages, served with
// gin: authentication for local accounts, users and their faces, 1:N identify
// for technicians, attendance lists and .xlsx exports, bulk enrolment from a
// spreadsheet and a zip of photos, status and Prometheus metrics, the kiosk
// screen (live preview and feedback for the device's own display) and the
// technician page.
//
// The HTTP contract is docs/openapi.yaml; an embedded copy is served at
// /api/v1/openapi.yaml and a test keeps routes and document in step.
//
// Every error a client sees goes through one place (writeError in
// errors.go), which maps models error codes to HTTP statuses and shows
// internal errors as "Internal error." after logging them.
package localapi

//go:generate cp ../docs/openapi.yaml openapi.yaml
