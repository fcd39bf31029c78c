package synctest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Certs is a throwaway PKI written to a temporary folder: a CA, a server
// certificate for localhost/127.0.0.1, and client certificates whose common
// names are the broker usernames.
type Certs struct {
	Dir                   string
	CAFile                string
	ServerCert, ServerKey string
	// Clients maps a common name to its certificate and key files.
	Clients map[string][2]string

	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
}

// MustCerts generates the CA, the server certificate and one client
// certificate per common name.
func MustCerts(tb testing.TB, clients ...string) *Certs {
	tb.Helper()
	c := &Certs{Dir: tb.TempDir(), Clients: map[string][2]string{}}
	key := mustKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kioskd test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	c.caCert, _ = x509.ParseCertificate(der)
	c.caKey = key
	c.CAFile = filepath.Join(c.Dir, "ca.pem")
	writePEM(tb, c.CAFile, "CERTIFICATE", der)
	c.ServerCert, c.ServerKey = c.issue(tb, "server", "localhost", true)
	for _, cn := range clients {
		cert, k := c.issue(tb, cn, cn, false)
		c.Clients[cn] = [2]string{cert, k}
	}
	return c
}

var serial int64 = 1

func (c *Certs) issue(tb testing.TB, file, cn string, server bool) (string, string) {
	key := mustKey(tb)
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.caCert, &key.PublicKey, c.caKey)
	if err != nil {
		tb.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	certFile, keyFile := filepath.Join(c.Dir, file+".pem"), filepath.Join(c.Dir, file+"-key.pem")
	writePEM(tb, certFile, "CERTIFICATE", der)
	writePEM(tb, keyFile, "EC PRIVATE KEY", kb)
	return certFile, keyFile
}

func mustKey(tb testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func writePEM(tb testing.TB, path, typ string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
}
