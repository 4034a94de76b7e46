"""Wire formats: what crosses the edge (WebSocket frames, HTTP bodies and views, the panel's
fields), parsed into typed values on the way in and rendered on the way out. The domain and the
use cases never see raw JSON."""
