package localapi

// revocationsKey is the MetaStore key of the logged-out tokens.
const revocationsKey = "localapi/revoked_tokens"

// maxRevokedTokens bounds the stored token ids; past it, a logout revokes
// every token of the account issued up to the logged-out one instead.
const maxRevokedTokens = 10_000

// revocations are the logged-out tokens, as stored: token ids with their
// expiry, and per account a cut-off (tokens issued at or before it are
// refused). Both are dropped once no token they name can be valid.
type revocations struct {
	IDs    map[string]int64 `json:"ids"`    // token id -> expiry (unix)
	Before map[string]int64 `json:"before"` // email -> issued-at cut-off (unix)
}

// maxTokenLifetime is Config.TokenTTL's upper bound: a cut-off older than
// this names no valid token.
const maxTokenLifetime = 24 * 60 * 60

func newRevocations() revocations {
	return revocations{IDs: map[string]int64{}, Before: map[string]int64{}}
}

func (r *revocations) has(c *tokenClaims) bool {
	if _, ok := r.IDs[c.ID]; ok {
		return true
	}
	cut, ok := r.Before[c.Email]
	return ok && c.Issued <= cut
}

func (r *revocations) add(c *tokenClaims) {
	if len(r.IDs) < maxRevokedTokens {
		r.IDs[c.ID] = c.Expires
		return
	}
	r.Before[c.Email] = max(r.Before[c.Email], c.Issued)
}

func (r *revocations) sweep(now int64) {
	if r.IDs == nil {
		r.IDs = map[string]int64{}
	}
	if r.Before == nil {
		r.Before = map[string]int64{}
	}
	for id, exp := range r.IDs {
		if exp <= now {
			delete(r.IDs, id)
		}
	}
	for email, cut := range r.Before {
		if cut+maxTokenLifetime <= now {
			delete(r.Before, email)
		}
	}
}
