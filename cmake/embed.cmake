# smpost_embed_text(<target> <c_symbol> <file>)
# Compiles <file> into <target> as `const char <c_symbol>[]` (NUL-terminated),
# so a binary carries its SQL schema (and later its OpenAPI document) with it.
function(smpost_embed_text target symbol file)
  set(out "${CMAKE_CURRENT_BINARY_DIR}/embed_${symbol}.c")
  add_custom_command(
    OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} -DIN=${file} -DOUT=${out} -DSYM=${symbol}
            -P "${PROJECT_SOURCE_DIR}/cmake/embed_run.cmake"
    DEPENDS "${file}" "${PROJECT_SOURCE_DIR}/cmake/embed_run.cmake"
    VERBATIM)
  target_sources(${target} PRIVATE "${out}")
endfunction()
