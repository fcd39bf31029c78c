package localapi

// xlsxContentType is the media type of .xlsx files.
const xlsxContentType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

// safeCell neutralises spreadsheet formula injection: a text cell starting
// with = + - @ (or a tab or carriage return, which some programs skip before
// them) gets a leading apostrophe, so no spreadsheet program evaluates it,
// whatever it does with the file later (CSV re-export included).
func safeCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}
