"""The status model: frozen values mirroring toolhive's vmcp.Status, validated against the CRD.

``status`` holds the values, ``codec`` their JSON form, ``conditions`` the condition
types and reasons the runtime writes.
"""
