// Command jwtinterop verifies platform access tokens as a Go service sharing the secret would
// (golang-jwt v5, HS256 pinned, kid checked, 30 s leeway) and prints the claims as JSON.
package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func kidOf(secret string) string {
	sum := sha256.Sum256([]byte("kid:" + secret))
	return base64.RawURLEncoding.EncodeToString(sum[:])[:12]
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: jwtinterop SECRET TOKEN")
		os.Exit(2)
	}
	secret, raw := os.Args[1], os.Args[2]
	claims := jwt.MapClaims{}
	token, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		if t.Header["kid"] != kidOf(secret) {
			return nil, fmt.Errorf("unknown kid")
		}
		return []byte(secret), nil
	}, jwt.WithValidMethods([]string{"HS256"}), jwt.WithLeeway(30*time.Second), jwt.WithIssuedAt(), jwt.WithExpirationRequired())
	if err != nil || !token.Valid {
		fmt.Fprintln(os.Stderr, "invalid:", err)
		os.Exit(1)
	}
	if claims["type"] != "access" {
		fmt.Fprintln(os.Stderr, "invalid: not an access token")
		os.Exit(1)
	}
	out, _ := json.Marshal(claims)
	fmt.Println(string(out))
}
