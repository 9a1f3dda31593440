package kvstore

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// maxTokenLen bounds an escaped id; longer ones are hashed (see the package doc).
const maxTokenLen = 512

func orderKey(orderNo string) string { return "order." + token(orderNo) }
func profileKey(iccid string) string { return "profile." + token(iccid) }
func claimKey(id string) string      { return "claim." + token(id) }
func logKey(iccid string) string     { return "log." + token(iccid) }
func budgetKey(name string) string   { return "budget." + token(name) }
func contactKey(txID string) string  { return "contact." + token(txID) }

// openKey holds an open intent's latest log entry ("*" for a watch of all).
func openKey(id string) string {
	if id == "*" {
		return "open.*"
	}
	return "open." + token(id)
}

// contactIndexKey holds the transactionId of the contact listing an iccid.
func contactIndexKey(iccid string) string { return "contact_iccid." + token(iccid) }

// contactAddressKey holds the transactionId of the contact with an email or
// phone (store.AddressKey).
func contactAddressKey(address string) string { return "contact_address." + token(address) }

// token turns any string into one valid KV key token, injectively, keeping
// plain ids readable.
func token(id string) string {
	if id == "" {
		return "="
	}
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
			b.WriteByte(c)
		default:
			b.WriteByte('=')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xF])
		}
	}
	if b.Len() > maxTokenLen {
		sum := sha256.Sum256([]byte(id))
		return "==" + hex.EncodeToString(sum[:])
	}
	return b.String()
}
