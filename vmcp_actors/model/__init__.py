"""The status model: frozen values mirroring toolhive's vmcp.Status, validated against the CRD, and its JSON codec."""
