# SPDX-License-Identifier: Apache-2.0
# smpost_embed_text(<target> <c_symbol> <file>)
# Compiles <file> into <target> as `const char <c_symbol>[]` (NUL-terminated),
# so a binary carries its SQL schema and its OpenAPI document with it.
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

# smpost_embed_openapi(<target> <service> <c_symbol>)
# Compiles <service>'s part of docs/openapi.yaml (command-api or query-api),
# converted to JSON by cmake/openapi_split.py, into <target> as
# `const char <c_symbol>[]`: the document GET /openapi.json serves, so a
# binary describes itself without any file beside it. Needs python3 with
# PyYAML (Debian: python3-yaml, installed by scripts/bootstrap.sh).
function(smpost_embed_openapi target service symbol)
  if(NOT SMPOST_PYTHON3)
    # Debian's python3-yaml lives in /usr/bin/python3's dist-packages; a
    # python3 earlier on PATH (pyenv, a venv) may lack it, so try Debian's
    # first, then the one on PATH, and keep the first that can import yaml.
    unset(_smpost_py)
    find_program(_smpost_py python3 NO_CACHE)
    foreach(candidate /usr/bin/python3 ${_smpost_py})
      if(EXISTS "${candidate}")
        execute_process(COMMAND "${candidate}" -c "import yaml"
                        RESULT_VARIABLE _rc OUTPUT_QUIET ERROR_QUIET)
        if(_rc EQUAL 0)
          set(SMPOST_PYTHON3 "${candidate}" CACHE FILEPATH "python3 with PyYAML (OpenAPI embedding)")
          break()
        endif()
      endif()
    endforeach()
    if(NOT SMPOST_PYTHON3)
      message(FATAL_ERROR "python3 with PyYAML is needed to embed docs/openapi.yaml "
                          "(Debian: apt-get install python3-yaml; scripts/bootstrap.sh does it)")
    endif()
  endif()
  set(json "${CMAKE_CURRENT_BINARY_DIR}/openapi.${service}.json")
  add_custom_command(
    OUTPUT "${json}"
    COMMAND ${SMPOST_PYTHON3} "${PROJECT_SOURCE_DIR}/cmake/openapi_split.py" ${service}
            "${PROJECT_SOURCE_DIR}/docs/openapi.yaml" "${json}" "${PROJECT_VERSION}"
    DEPENDS "${PROJECT_SOURCE_DIR}/docs/openapi.yaml" "${PROJECT_SOURCE_DIR}/cmake/openapi_split.py"
    COMMENT "OpenAPI: ${service}'s part of docs/openapi.yaml -> ${json}"
    VERBATIM)
  smpost_embed_text(${target} ${symbol} "${json}")
endfunction()
