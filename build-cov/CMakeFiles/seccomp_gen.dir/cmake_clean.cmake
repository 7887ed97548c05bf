file(REMOVE_RECURSE
  "CMakeFiles/seccomp_gen.dir/src/sandbox/gen/seccomp_gen.c.o"
  "CMakeFiles/seccomp_gen.dir/src/sandbox/gen/seccomp_gen.c.o.d"
  "seccomp_gen"
  "seccomp_gen.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/seccomp_gen.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
