file(REMOVE_RECURSE
  "libsedge_pki.a"
)
