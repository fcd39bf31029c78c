package password

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kioskd/kioskd/models"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// djangoVectors were made by Django 5.2.19's make_password (with argon2-cffi
// and bcrypt installed) for "correct horse battery staple" unless noted.
var djangoVectors = []struct {
	name, password, hash string
}{
	{"pbkdf2_sha256", "correct horse battery staple", "pbkdf2_sha256$1000000$2ptIbcIoGAytsS5aWzwGLX$u2j4ZtpmMuJRG9GS/FulBrwgtMGLtbePFIdsSklVJeE="},
	{"pbkdf2_sha1", "correct horse battery staple", "pbkdf2_sha1$1000000$dmb1FH1ye6PqZtii4VzNw2$ar2jQF1DnW38YVweel9MeedguSI="},
	{"argon2", "correct horse battery staple", "argon2$argon2id$v=19$m=102400,t=2,p=8$eDVaZ3BvV1k0bFFwWm9XYktOaWJHdg$v4CQbsaLnXir/1mLeCZVPvtm9lj48u9ZDqRifTLcdjk"},
	{"bcrypt_sha256", "correct horse battery staple", "bcrypt_sha256$$2b$12$dHDr7EQ1z.aHyOb7I4IGJeO8S3HnT111LxFwVM7rYhiKJqoCiRYHi"},
	{"bcrypt", "correct horse battery staple", "bcrypt$$2b$12$p9vItGXW2ZIbmWkY5pL5zOaR5zp0vEWR13g.OVyirKNRvLX54DsCa"},
	{"scrypt", "correct horse battery staple", "scrypt$16384$IT6WzNxFwCVJaOFswmxwVO$8$5$IctBhyFG0e/RlqA5RwLm4tKh4ZX68x8Y6x7OX7WlWjhQOMbUihGdpiDvINPSuWb9PQndNDR51dfJMS2/NHO5TA=="},
	{"pbkdf2_sha256 unicode", "pässwörd-ünïcode-ß", "pbkdf2_sha256$1000000$v3WU8FhK4xkpsvuoLrLQbP$P313l/TsoJ3Ysztz2IrxVOe1YXME8bjdv6CVi5PiEzs="},
	{"argon2 unicode", "pässwörd-ünïcode-ß", "argon2$argon2id$v=19$m=102400,t=2,p=8$cE5ibVNJT1ZJclh3b0kwM3hSUXlxdg$jHyrnG2Nr4aJbKI27lXZ5vfT1QZbonbm0Rd///P0fiI"},
	// bcrypt_sha256 exists for passwords past bcrypt's 72 bytes.
	{"bcrypt_sha256 long", strings.Repeat("x", 100), "bcrypt_sha256$$2b$12$zH0evW8g4R5G8gG2Z5vCl.TyolJmLE2s.oP1uGASemI.eJW2ip1Wm"},
}

func TestVerifyPassword_Django(t *testing.T) {
	for _, v := range djangoVectors {
		t.Run(v.name, func(t *testing.T) {
			if !PasswordHashSupported(v.hash) {
				t.Fatalf("PasswordHashSupported = false")
			}
			ok, err := VerifyPassword(v.hash, v.password)
			if err != nil || !ok {
				t.Fatalf("VerifyPassword(right) = %v, %v; want true, nil", ok, err)
			}
			ok, err = VerifyPassword(v.hash, v.password+"x")
			if err != nil || ok {
				t.Fatalf("VerifyPassword(wrong) = %v, %v; want false, nil", ok, err)
			}
		})
	}
}

// TestVerifyPassword_PythonPBKDF2 computes Django-format pbkdf2 hashes with
// Python's hashlib (what Django itself calls) for several iteration counts and
// salts, when python3 is on PATH.
func TestVerifyPassword_PythonPBKDF2(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	script := `
import base64, hashlib, sys
for it, salt, pw in [(1, "a", "x"), (1000, "saltsaltsalt", "Tr0ub4dor&3 ok"), (260000, "Zq8pPW0lK9xV", "ünï cödé ☃")]:
    dk = hashlib.pbkdf2_hmac("sha256", pw.encode(), salt.encode(), it)
    print("pbkdf2_sha256$%d$%s$%s\t%s" % (it, salt, base64.b64encode(dk).decode(), pw))
`
	out, err := exec.Command(py, "-c", script).Output()
	if err != nil {
		t.Skipf("python3: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 {
		t.Fatalf("python printed %q", out)
	}
	for _, line := range lines {
		hash, pw, _ := strings.Cut(line, "\t")
		if ok, err := VerifyPassword(hash, pw); err != nil || !ok {
			t.Errorf("VerifyPassword(%q, %q) = %v, %v", hash, pw, ok, err)
		}
		if ok, _ := VerifyPassword(hash, pw[:len(pw)-1]); ok {
			t.Errorf("VerifyPassword(%q, truncated) = true", hash)
		}
	}
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("a perfectly fine passphrase")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not a PHC argon2id string", h)
	}
	if h2, _ := HashPassword("a perfectly fine passphrase"); h2 == h {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	if ok, err := VerifyPassword(h, "a perfectly fine passphrase"); !ok || err != nil {
		t.Fatalf("VerifyPassword(own hash) = %v, %v", ok, err)
	}
	if ok, err := VerifyPassword(h, "a perfectly fine passphrasE"); ok || err != nil {
		t.Fatalf("VerifyPassword(wrong) = %v, %v", ok, err)
	}
	// Django stores the same hash as "argon2" + the PHC string without its leading "$"... and ours keeps it: both parse.
	if ok, err := VerifyPassword("argon2"+h, "a perfectly fine passphrase"); !ok || err != nil {
		t.Fatalf("VerifyPassword(Django-prefixed own hash) = %v, %v", ok, err)
	}
	if _, err := HashPassword(""); models.ErrorCode(err) != models.EINVALID {
		t.Fatalf("HashPassword(\"\") err = %v", err)
	}
	if _, err := HashPassword(strings.Repeat("a", MaxPasswordLen+1)); models.ErrorCode(err) != models.EINVALID {
		t.Fatalf("HashPassword(huge) err = %v", err)
	}
}

// TestVerifyPassword_GoVectors checks hashes made here with x/crypto in the
// exact layouts Django writes (argon2$argon2id$..., argon2i, bcrypt$$2b$...).
func TestVerifyPassword_GoVectors(t *testing.T) {
	salt := []byte("0123456789abcdef")
	pw := "horse battery"
	id := argon2.IDKey([]byte(pw), salt, 1, 64, 1, 32)
	i := argon2.Key([]byte(pw), salt, 1, 64, 1, 32)
	bc, err := bcrypt.GenerateFromPassword([]byte(pw), 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{
		fmt.Sprintf("argon2$argon2id$v=19$m=64,t=1,p=1$%s$%s", b64raw.EncodeToString(salt), b64raw.EncodeToString(id)),
		fmt.Sprintf("argon2$argon2i$v=19$m=64,t=1,p=1$%s$%s", b64raw.EncodeToString(salt), b64raw.EncodeToString(i)),
		fmt.Sprintf("$argon2id$v=19$m=64,t=1,p=1$%s$%s", b64std.EncodeToString(salt), b64std.EncodeToString(id)), // padded
		"bcrypt$" + string(bc),
		string(bc),
	} {
		if ok, err := VerifyPassword(h, pw); !ok || err != nil {
			t.Errorf("VerifyPassword(%q) = %v, %v", h, ok, err)
		}
	}
}

func TestVerifyPassword_RefusesBadHashes(t *testing.T) {
	salt := b64raw.EncodeToString([]byte("0123456789abcdef"))
	key := b64raw.EncodeToString(make([]byte, 32))
	cases := map[string]string{
		"empty":             "",
		"unknown":           "md5$abc$0123456789abcdef0123456789abcdef",
		"sha1 unsalted":     "sha1$$0123456789abcdef0123456789abcdef01234567",
		"pbkdf2 huge iter":  "pbkdf2_sha256$1000000000$salt$u2j4ZtpmMuJRG9GS/FulBrwgtMGLtbePFIdsSklVJeE=",
		"pbkdf2 zero iter":  "pbkdf2_sha256$0$salt$u2j4ZtpmMuJRG9GS/FulBrwgtMGLtbePFIdsSklVJeE=",
		"pbkdf2 neg iter":   "pbkdf2_sha256$-5$salt$u2j4ZtpmMuJRG9GS/FulBrwgtMGLtbePFIdsSklVJeE=",
		"pbkdf2 short key":  "pbkdf2_sha256$1000$salt$AAAA",
		"pbkdf2 no salt":    "pbkdf2_sha256$1000$$u2j4ZtpmMuJRG9GS/FulBrwgtMGLtbePFIdsSklVJeE=",
		"pbkdf2 parts":      "pbkdf2_sha256$1000",
		"argon2 huge mem":   "argon2$argon2id$v=19$m=4194304,t=2,p=8$" + salt + "$" + key,
		"argon2 huge time":  "argon2$argon2id$v=19$m=1024,t=100000,p=1$" + salt + "$" + key,
		"argon2 huge par":   "argon2$argon2id$v=19$m=102400,t=2,p=255$" + salt + "$" + key,
		"argon2 overflow":   "argon2$argon2id$v=19$m=99999999999999999999,t=2,p=8$" + salt + "$" + key,
		"argon2 old ver":    "argon2$argon2i$m=512,t=2,p=2$" + salt + "$" + key,
		"argon2 argon2d":    "argon2$argon2d$v=19$m=512,t=2,p=2$" + salt + "$" + key,
		"argon2 missing p":  "$argon2id$v=19$m=512,t=2$" + salt + "$" + key,
		"argon2 empty salt": "$argon2id$v=19$m=512,t=2,p=1$$" + key,
		"argon2 bad b64":    "$argon2id$v=19$m=512,t=2,p=1$" + salt + "$***",
		"bcrypt cost 31":    "bcrypt$$2b$31$dHDr7EQ1z.aHyOb7I4IGJeO8S3HnT111LxFwVM7rYhiKJqoCiRYHi",
		"bcrypt cost 15":    "bcrypt_sha256$$2b$15$dHDr7EQ1z.aHyOb7I4IGJeO8S3HnT111LxFwVM7rYhiKJqoCiRYHi",
		"bcrypt short":      "bcrypt$$2b$12$dHDr7EQ1z",
		"scrypt huge N":     "scrypt$1073741824$salt$8$5$IctBhyFG0e/RlqA5RwLm4tKh4ZX68x8Y6x7OX7WlWjhQOMbUihGdpiDvINPSuWb9PQndNDR51dfJMS2/NHO5TA==",
		"scrypt N not pow2": "scrypt$1000$salt$8$5$IctBhyFG0e/RlqA5RwLm4tKh4ZX68x8Y6x7OX7WlWjhQOMbUihGdpiDvINPSuWb9PQndNDR51dfJMS2/NHO5TA==",
		"too long":          "pbkdf2_sha256$1000$" + strings.Repeat("s", 2000) + "$AAAA",
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			if PasswordHashSupported(h) {
				t.Fatalf("PasswordHashSupported(%q) = true", h)
			}
			ok, err := VerifyPassword(h, "whatever")
			if ok || models.ErrorCode(err) != models.EINVALID {
				t.Fatalf("VerifyPassword = %v, %v; want false, EINVALID", ok, err)
			}
		})
	}
	// Django's unusable password is a plain mismatch.
	if ok, err := VerifyPassword("!Vbd0ik1TfQLNmAXBB7uHwbQwTpzxHXxDCvJmBAMV", "x"); ok || err != nil {
		t.Fatalf("unusable password: %v, %v", ok, err)
	}
}

func TestValidatePassword(t *testing.T) {
	ok := []struct{ pw, email string }{
		{"violet-harbour-71-kettle", "ada.lovelace@example.com"},
		{"Zq8#pW0lK9xV", "tech@kiosk.local"},
		{"glass mountain river", ""},
		{"ünïcödé pässphräse", "x@example.com"},
	}
	for _, c := range ok {
		if err := ValidatePassword(c.pw, c.email); err != nil {
			t.Errorf("ValidatePassword(%q, %q) = %v", c.pw, c.email, err)
		}
	}
	bad := []struct {
		pw, email, problem string
	}{
		{"short1!", "a@example.com", "password_too_short"},
		{"123456789012", "a@example.com", "password_entirely_numeric"},
		{"password123", "a@example.com", "password_too_common"},
		{"  QwertyUIOP ", "a@example.com", "password_too_common"},
		{"iloveyou2024", "a@example.com", "password_too_common"},
		{"1234567890", "a@example.com", "password_too_common"},
		{"ada.lovelace@example.com", "ada.lovelace@example.com", "password_too_similar"},
		{"lovelace12", "ada.lovelace@example.com", "password_too_similar"},
		{"elpmaxe.moc", "ada.lovelace@example.com", "password_too_similar"}, // an anagram: quick_ratio counts letters
		{strings.Repeat("a", MaxPasswordLen+1), "", "password_too_long"},
		{strings.Repeat(" ", 10), "a@example.com", "password_blank"},
		{strings.Repeat("\x00", 10), "a@example.com", "password_control_chars"},
		{"violet-harbour\x1b[2J", "a@example.com", "password_control_chars"},
		{"violet-harbour-\xff\xfe", "a@example.com", "password_control_chars"},
	}
	for _, c := range bad {
		err := ValidatePassword(c.pw, c.email)
		if models.ErrorCode(err) != models.EINVALID {
			t.Errorf("ValidatePassword(%q) = %v; want EINVALID", c.pw, err)
			continue
		}
		problems, _ := models.ErrorDetails(err)["problems"].([]string)
		found := false
		for _, p := range problems {
			found = found || p == c.problem
		}
		if !found {
			t.Errorf("ValidatePassword(%q) problems %v; want %s (message %q)", c.pw, problems, c.problem, models.ErrorMessage(err))
		}
		if !strings.HasPrefix(models.ErrorMessage(err), "password: ") {
			t.Errorf("message %q does not name the field", models.ErrorMessage(err))
		}
	}
	// Every problem at once, in one message.
	err := ValidatePassword("12345", "12345@example.com")
	if p := models.ErrorDetails(err)["problems"].([]string); len(p) != 4 {
		t.Errorf("problems %v, want 4 (%s)", p, models.ErrorMessage(err))
	}
}

// TestQuickRatio_Python compares quickRatio and the similarity rule against
// Python's difflib when python3 is on PATH.
func TestQuickRatio_Python(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	pairs := [][2]string{
		{"lovelace12", "lovelace"}, {"abc", "xyz"}, {"adalovelace", "ada.lovelace@example.com"},
		{"ünïcödé", "unicode"}, {"", "abc"}, {"aaaa", "a"}, {"tech@kiosk.local", "kiosk"},
	}
	var b strings.Builder
	b.WriteString("import difflib\n")
	for _, p := range pairs {
		fmt.Fprintf(&b, "print(repr(difflib.SequenceMatcher(a=%q, b=%q).quick_ratio()))\n", p[0], p[1])
	}
	out, err := exec.Command(py, "-c", b.String()).Output()
	if err != nil {
		t.Skipf("python3: %v", err)
	}
	lines := strings.Fields(string(out))
	for i, p := range pairs {
		var want float64
		fmt.Sscan(lines[i], &want)
		if got := quickRatio(p[0], p[1]); fmt.Sprintf("%.12f", got) != fmt.Sprintf("%.12f", want) {
			t.Errorf("quickRatio(%q, %q) = %v, python %v", p[0], p[1], got, want)
		}
	}
}

// TestCommonPasswordList checks the embedded list loads, is lowercase and
// holds the classics.
func TestCommonPasswordList(t *testing.T) {
	set := commonPasswords()
	if len(set) < 1000 {
		t.Fatalf("only %d common passwords", len(set))
	}
	for w := range set {
		if w != strings.ToLower(strings.TrimSpace(w)) {
			t.Fatalf("entry %q is not lowercased and trimmed", w)
		}
	}
	for _, w := range []string{"123456", "password", "qwerty", "iloveyou", "letmein", "password1", "qwertyuiop", "1q2w3e4r5t"} {
		if !IsCommonPassword(w) {
			t.Errorf("%q not in the list", w)
		}
	}
	if IsCommonPassword("violet-harbour-71-kettle") {
		t.Error("a random passphrase is in the list")
	}
	if _, err := os.Stat(filepath.Join("common_passwords.txt.gz")); err != nil {
		t.Fatal(err)
	}
}

// FuzzVerifyPassword feeds arbitrary hashes (from central) to the parser: it
// must never panic, and nothing it accepts may be outside the cost bounds.
func FuzzVerifyPassword(f *testing.F) {
	for _, v := range djangoVectors {
		f.Add(v.hash)
	}
	f.Add("$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("pbkdf2_sha256$1$a$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	f.Fuzz(func(t *testing.T, h string) {
		v, err := parsePasswordHash(h)
		if err != nil {
			if models.ErrorCode(err) != models.EINVALID {
				t.Fatalf("parse error %v is not EINVALID", err)
			}
			return
		}
		// Only run the cheap ones; the bounds keep the rest finite but slow.
		switch x := v.(type) {
		case *pbkdf2Hash:
			if x.iterations > 10000 {
				return
			}
		case *argon2Hash:
			if x.memory > 4096 || x.time > 2 {
				return
			}
		default:
			return
		}
		_, _ = v.verify("fuzz")
	})
}
