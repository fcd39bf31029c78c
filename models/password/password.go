package password

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/kioskd/kioskd/models"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"
)

// Password hashes. Accounts made on the device get argon2id in the PHC string
// format ("$argon2id$v=19$m=19456,t=2,p=1$salt$hash", unpadded standard
// base64). Accounts pushed by central carry Django's formats, which
// VerifyPassword also checks:
//
//	pbkdf2_sha256$1000000$salt$base64hash   (and pbkdf2_sha1)
//	argon2$argon2id$v=19$m=102400,t=2,p=8$salt$hash   (and argon2i)
//	bcrypt_sha256$$2b$12$...   (bcrypt over the hex SHA-256 of the password)
//	bcrypt$$2b$12$...
//	scrypt$16384$salt$8$5$base64hash
//
// A hash arrives from outside (central, a config push), so its cost
// parameters are bounded before any work is done: a hash with absurd
// iterations or memory would otherwise let one login attempt pin the CPU or
// exhaust the device's memory.

// Parameters of the argon2id hashes made on the device: OWASP's minimum
// (19 MiB, 2 passes, 1 lane), cheap enough in memory that a burst of logins
// cannot exhaust a kiosk (cost: docs/benchmarks.md, "Password hashing").
const (
	argon2Memory  = 19 * 1024 // KiB
	argon2Time    = 2
	argon2Threads = 1
	argon2SaltLen = 16
	argon2KeyLen  = 32
)

// Bounds on the cost parameters VerifyPassword accepts. Django's defaults
// (pbkdf2 1,000,000-1,200,000 iterations; argon2 100 MiB, t=2, p=8; bcrypt 12;
// scrypt N=2^14, r=8) fit with room for a few years of growth.
const (
	MaxPBKDF2Iterations = 3_000_000
	MaxArgon2MemoryKiB  = 128 * 1024
	MaxArgon2Time       = 16
	MaxArgon2Threads    = 16
	MaxBcryptCost       = 14
	MaxScryptMemory     = 128 << 20 // bytes: 128 * N * r
	MaxScryptP          = 16
)

// Bounds on passwords and hashes: a longer input is refused before hashing.
const (
	MinPasswordLen  = 10   // characters, for device accounts
	MaxPasswordLen  = 1024 // bytes
	maxHashLen      = 1024
	minSaltBytes    = 8
	maxSaltBytes    = 128
	minDigestBytes  = 16
	maxDigestBytes  = 128
	passwordSimilar = 0.7 // Django's UserAttributeSimilarityValidator default
)

// HashPassword returns an argon2id hash of password in the PHC string format.
// Errors: EINVALID (empty or longer than MaxPasswordLen).
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", models.Errorf(models.EINVALID, "password: required").WithDetail("field", "password")
	} else if len(password) > MaxPasswordLen {
		return "", models.Errorf(models.EINVALID, "password: longer than %d bytes", MaxPasswordLen).WithDetail("field", "password")
	}
	salt := make([]byte, argon2SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argon2Time, argon2Memory, argon2Threads, argon2KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argon2Memory, argon2Time, argon2Threads,
		b64raw.EncodeToString(salt), b64raw.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches hash, comparing in constant
// time. A mismatch is (false, nil). A hash that is malformed, of an unknown
// format or with cost parameters out of bounds is (false, EINVALID): the
// account cannot log in until it gets a new hash. Django's "unusable password"
// (a hash starting with "!") is (false, nil).
func VerifyPassword(hash, password string) (bool, error) {
	if strings.HasPrefix(hash, "!") {
		return false, nil
	}
	v, err := parsePasswordHash(hash)
	if err != nil {
		return false, err
	}
	if len(password) > MaxPasswordLen {
		// Still no match, but refuse to spend the work on it.
		return false, nil
	}
	return v.verify(password)
}

// PasswordHashSupported reports whether VerifyPassword can check hash: a known
// format with cost parameters within bounds.
func PasswordHashSupported(hash string) bool {
	_, err := parsePasswordHash(hash)
	return err == nil
}

var (
	b64raw = base64.RawStdEncoding
	b64std = base64.StdEncoding
)

// passwordVerifier checks a password against one parsed hash.
type passwordVerifier interface {
	verify(password string) (bool, error)
}

func badHash(format string, args ...any) error {
	return models.Errorf(models.EINVALID, "password hash: "+format, args...).WithDetail("field", "password_hash")
}

// parsePasswordHash recognises hash's format and checks its parameters,
// doing no expensive work.
func parsePasswordHash(h string) (passwordVerifier, error) {
	if h == "" {
		return nil, badHash("empty")
	} else if len(h) > maxHashLen {
		return nil, badHash("longer than %d bytes", maxHashLen)
	}
	switch {
	case strings.HasPrefix(h, "$argon2"):
		return parseArgon2(h[1:])
	case strings.HasPrefix(h, "argon2$"):
		return parseArgon2(h[len("argon2$"):])
	case strings.HasPrefix(h, "pbkdf2_sha256$"):
		return parsePBKDF2(h, sha256.New, sha256.Size)
	case strings.HasPrefix(h, "pbkdf2_sha1$"):
		return parsePBKDF2(h, sha1.New, sha1.Size)
	case strings.HasPrefix(h, "bcrypt_sha256$"):
		return parseBcrypt(h[len("bcrypt_sha256$"):], true)
	case strings.HasPrefix(h, "bcrypt$"):
		return parseBcrypt(h[len("bcrypt$"):], false)
	case strings.HasPrefix(h, "$2a$"), strings.HasPrefix(h, "$2b$"), strings.HasPrefix(h, "$2y$"):
		return parseBcrypt(h, false)
	case strings.HasPrefix(h, "scrypt$"):
		return parseScrypt(h)
	}
	alg, _, _ := strings.Cut(h, "$")
	if len(alg) > 32 {
		alg = alg[:32]
	}
	return nil, badHash("unsupported format %q; supported: argon2id, argon2 (Django), pbkdf2_sha256, pbkdf2_sha1, bcrypt_sha256, bcrypt, scrypt", alg)
}

// argon2Hash is "argon2id$v=19$m=M,t=T,p=P$salt$key" (the PHC string without
// its leading "$", which is also Django's argon2 hash after "argon2$").
type argon2Hash struct {
	variant      string
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

func parseArgon2(s string) (passwordVerifier, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 5 {
		return nil, badHash("argon2: want variant$v=19$m=..,t=..,p=..$salt$hash")
	}
	a := &argon2Hash{variant: parts[0]}
	if a.variant != "argon2id" && a.variant != "argon2i" {
		return nil, badHash("argon2: unsupported variant %q (argon2id or argon2i)", a.variant)
	}
	if parts[1] != "v=19" {
		return nil, badHash("argon2: unsupported version %q (v=19)", parts[1])
	}
	var m, t, p int
	seen := 0
	for _, kv := range strings.Split(parts[2], ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n <= 0 {
			return nil, badHash("argon2: bad parameter %q", kv)
		}
		switch k {
		case "m":
			m, seen = n, seen|1
		case "t":
			t, seen = n, seen|2
		case "p":
			p, seen = n, seen|4
		default:
			return nil, badHash("argon2: unknown parameter %q", k)
		}
	}
	switch {
	case seen != 7:
		return nil, badHash("argon2: m, t and p are required")
	case m > MaxArgon2MemoryKiB:
		return nil, badHash("argon2: memory %d KiB is above the device's limit of %d KiB", m, MaxArgon2MemoryKiB)
	case t > MaxArgon2Time:
		return nil, badHash("argon2: %d passes is above the device's limit of %d", t, MaxArgon2Time)
	case p > MaxArgon2Threads:
		return nil, badHash("argon2: parallelism %d is above the device's limit of %d", p, MaxArgon2Threads)
	case m < 8*p:
		return nil, badHash("argon2: memory %d KiB is below 8 KiB per lane", m)
	}
	a.memory, a.time, a.threads = uint32(m), uint32(t), uint8(p)
	var err error
	if a.salt, err = decodeB64Raw(parts[3]); err != nil || len(a.salt) < minSaltBytes || len(a.salt) > maxSaltBytes {
		return nil, badHash("argon2: bad salt")
	}
	if a.key, err = decodeB64Raw(parts[4]); err != nil || len(a.key) < minDigestBytes || len(a.key) > maxDigestBytes {
		return nil, badHash("argon2: bad hash")
	}
	return a, nil
}

func (a *argon2Hash) verify(password string) (bool, error) {
	var got []byte
	if a.variant == "argon2id" {
		got = argon2.IDKey([]byte(password), a.salt, a.time, a.memory, a.threads, uint32(len(a.key)))
	} else {
		got = argon2.Key([]byte(password), a.salt, a.time, a.memory, a.threads, uint32(len(a.key)))
	}
	return subtle.ConstantTimeCompare(got, a.key) == 1, nil
}

// decodeB64Raw decodes base64 with or without padding (argon2-cffi writes
// none; some tools pad).
func decodeB64Raw(s string) ([]byte, error) {
	return b64raw.DecodeString(strings.TrimRight(s, "="))
}

// pbkdf2Hash is Django's "pbkdf2_sha256$iterations$salt$base64(dk)".
type pbkdf2Hash struct {
	h          func() hash.Hash
	iterations int
	salt       string
	key        []byte
}

func parsePBKDF2(s string, h func() hash.Hash, size int) (passwordVerifier, error) {
	parts := strings.SplitN(s, "$", 4)
	if len(parts) != 4 {
		return nil, badHash("pbkdf2: want algorithm$iterations$salt$hash")
	}
	iter, err := strconv.Atoi(parts[1])
	switch {
	case err != nil || iter <= 0:
		return nil, badHash("pbkdf2: bad iteration count %q", parts[1])
	case iter > MaxPBKDF2Iterations:
		return nil, badHash("pbkdf2: %d iterations is above the device's limit of %d", iter, MaxPBKDF2Iterations)
	case parts[2] == "" || len(parts[2]) > maxSaltBytes || strings.Contains(parts[3], "$"):
		return nil, badHash("pbkdf2: bad salt")
	}
	key, err := b64std.DecodeString(parts[3])
	if err != nil || len(key) != size {
		return nil, badHash("pbkdf2: bad hash")
	}
	return &pbkdf2Hash{h: h, iterations: iter, salt: parts[2], key: key}, nil
}

func (p *pbkdf2Hash) verify(password string) (bool, error) {
	got, err := pbkdf2.Key(p.h, password, []byte(p.salt), p.iterations, len(p.key))
	if err != nil {
		return false, fmt.Errorf("pbkdf2: %w", err)
	}
	return subtle.ConstantTimeCompare(got, p.key) == 1, nil
}

// bcryptHash is a modular-crypt bcrypt hash ("$2b$12$..."); Django's
// bcrypt_sha256 first replaces the password by the hex of its SHA-256.
type bcryptHash struct {
	hash   []byte
	sha256 bool
}

func parseBcrypt(s string, preHash bool) (passwordVerifier, error) {
	if !strings.HasPrefix(s, "$2") || len(s) != 60 {
		return nil, badHash("bcrypt: want $2b$cost$ followed by 53 characters")
	}
	cost, err := bcrypt.Cost([]byte(s))
	if err != nil {
		return nil, badHash("bcrypt: %v", err)
	} else if cost > MaxBcryptCost {
		return nil, badHash("bcrypt: cost %d is above the device's limit of %d", cost, MaxBcryptCost)
	}
	return &bcryptHash{hash: []byte(s), sha256: preHash}, nil
}

func (b *bcryptHash) verify(password string) (bool, error) {
	pw := []byte(password)
	if b.sha256 {
		sum := sha256.Sum256(pw)
		pw = []byte(hex.EncodeToString(sum[:]))
	}
	// bcrypt reads at most 72 bytes of key, as every bcrypt does.
	err := bcrypt.CompareHashAndPassword(b.hash, pw)
	if err == bcrypt.ErrMismatchedHashAndPassword {
		return false, nil
	} else if err != nil {
		return false, badHash("bcrypt: %v", err)
	}
	return true, nil
}

// scryptHash is Django's "scrypt$N$salt$r$p$base64(dk)".
type scryptHash struct {
	n, r, p int
	salt    string
	key     []byte
}

func parseScrypt(s string) (passwordVerifier, error) {
	parts := strings.SplitN(s, "$", 6)
	if len(parts) != 6 {
		return nil, badHash("scrypt: want scrypt$N$salt$r$p$hash")
	}
	n, err1 := strconv.Atoi(parts[1])
	r, err2 := strconv.Atoi(parts[3])
	p, err3 := strconv.Atoi(parts[4])
	switch {
	case err1 != nil || err2 != nil || err3 != nil || n <= 1 || r <= 0 || p <= 0 || n&(n-1) != 0:
		return nil, badHash("scrypt: bad parameters")
	case int64(n)*int64(r) > MaxScryptMemory/128:
		return nil, badHash("scrypt: N=%d r=%d needs more memory than the device's limit of %d MiB", n, r, MaxScryptMemory>>20)
	case p > MaxScryptP:
		return nil, badHash("scrypt: parallelism %d is above the device's limit of %d", p, MaxScryptP)
	case parts[2] == "" || len(parts[2]) > maxSaltBytes:
		return nil, badHash("scrypt: bad salt")
	}
	key, err := b64std.DecodeString(parts[5])
	if err != nil || len(key) < minDigestBytes || len(key) > maxDigestBytes {
		return nil, badHash("scrypt: bad hash")
	}
	return &scryptHash{n: n, r: r, p: p, salt: parts[2], key: key}, nil
}

func (s *scryptHash) verify(password string) (bool, error) {
	got, err := scrypt.Key([]byte(password), []byte(s.salt), s.n, s.r, s.p, len(s.key))
	if err != nil {
		return false, badHash("scrypt: %v", err)
	}
	return subtle.ConstantTimeCompare(got, s.key) == 1, nil
}

// ValidatePassword checks a new device-account password the way Django's
// default validators do, with a minimum length of MinPasswordLen: not too
// short, not entirely numeric, not a common password, not too similar to the
// email; and, beyond Django, not only spaces and free of control characters
// (a NUL or ESC cannot be typed at a login prompt, and truncates in C code). It returns one EINVALID error listing every problem (Details
// "problems" holds Django's codes), or nil.
func ValidatePassword(password, email string) error {
	var msgs, codes []string
	add := func(code, msg string) { codes, msgs = append(codes, code), append(msgs, msg) }
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLen:
		add("password_too_short", fmt.Sprintf("it is too short: use at least %d characters (it has %d)", MinPasswordLen, n))
	case len(password) > MaxPasswordLen:
		add("password_too_long", fmt.Sprintf("it is too long: use at most %d bytes", MaxPasswordLen))
	}
	if password != "" && strings.TrimSpace(password) == "" {
		add("password_blank", "it is only spaces: use letters, digits or symbols")
	}
	for _, r := range password {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == utf8.RuneError {
			add("password_control_chars", "it contains control characters or invalid UTF-8, which keyboards cannot type reliably")
			break
		}
	}
	if password != "" && isAllDigits(password) {
		add("password_entirely_numeric", "it is entirely numeric: add letters or symbols")
	}
	if IsCommonPassword(password) {
		add("password_too_common", "it is a commonly used password: choose a less predictable one, e.g. several unrelated words")
	}
	if email != "" && passwordTooSimilar(password, email) {
		add("password_too_similar", "it is too similar to the email address")
	}
	if len(msgs) == 0 {
		return nil
	}
	return models.Errorf(models.EINVALID, "password: %s.", strings.Join(msgs, "; ")).
		WithDetail("field", "password").WithDetail("problems", codes)
}

// isAllDigits is Python's str.isdigit for the common case: every rune a
// decimal digit.
func isAllDigits(s string) bool {
	for _, r := range s {
		if !unicode.IsDigit(r) {
			return false
		}
	}
	return true
}

// passwordTooSimilar is Django's UserAttributeSimilarityValidator for the
// email attribute: the lowercased password against the lowercased email and
// each of its \W+-separated parts, by difflib's SequenceMatcher.quick_ratio,
// skipping parts far shorter than the password.
func passwordTooSimilar(password, email string) bool {
	pw := strings.ToLower(password)
	value := strings.ToLower(email)
	parts := strings.FieldsFunc(value, func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_')
	})
	parts = append(parts, value)
	pwLen := utf8.RuneCountInString(pw)
	for _, part := range parts {
		vLen := utf8.RuneCountInString(part)
		// Django's exceeds_maximum_length_ratio: a short part cannot make a
		// long password similar.
		if pwLen >= 10*vLen && float64(vLen) < passwordSimilar/2*float64(pwLen) {
			continue
		}
		if quickRatio(pw, part) >= passwordSimilar {
			return true
		}
	}
	return false
}

// quickRatio is difflib.SequenceMatcher(a=a, b=b).quick_ratio(): twice the
// size of the multiset intersection of the runes over the total length.
func quickRatio(a, b string) float64 {
	counts := map[rune]int{}
	for _, r := range b {
		counts[r]++
	}
	matches, total := 0, utf8.RuneCountInString(b)
	for _, r := range a {
		total++
		if counts[r] > 0 {
			counts[r]--
			matches++
		}
	}
	if total == 0 {
		return 1
	}
	return 2 * float64(matches) / float64(total)
}

// commonPasswordsGz is our own list of commonly used passwords (classic leaked
// favourites, keyboard walks, words with the usual digit and year suffixes),
// lowercased, one per line, gzipped. It stands in for Django's
// common-passwords.txt.gz.
//
//go:embed common_passwords.txt.gz
var commonPasswordsGz []byte

var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	set := map[string]struct{}{}
	zr, err := gzip.NewReader(bytes.NewReader(commonPasswordsGz))
	if err != nil {
		panic("models: embedded common password list: " + err.Error()) // a build defect, caught by tests
	}
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		if w := strings.TrimSpace(sc.Text()); w != "" {
			set[w] = struct{}{}
		}
	}
	if err := sc.Err(); err != nil {
		panic("models: embedded common password list: " + err.Error())
	}
	return set
})

// IsCommonPassword reports whether password, lowercased and trimmed, is in the
// embedded list of common passwords (Django's CommonPasswordValidator rule).
func IsCommonPassword(password string) bool {
	_, ok := commonPasswords()[strings.ToLower(strings.TrimSpace(password))]
	return ok
}
