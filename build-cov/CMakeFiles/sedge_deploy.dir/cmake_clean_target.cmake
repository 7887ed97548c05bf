file(REMOVE_RECURSE
  "libsedge_deploy.a"
)
