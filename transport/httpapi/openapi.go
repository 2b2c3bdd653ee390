package httpapi

import (
	_ "embed"
	"net/http"
)

// openapiJSON is the OpenAPI 3.1 document of the API, kept beside the
// routes it describes; TestOpenAPIMatchesServer holds the two together.
//
//go:embed openapi.json
var openapiJSON []byte

// openapi serves GET /v1/openapi.json. It is public: it describes the API,
// which is no secret, and holds no data.
func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h.Set("Cache-Control", "no-cache")
	if _, err := w.Write(openapiJSON); err != nil {
		s.log.Debug("write openapi document", "err", err)
	}
}
