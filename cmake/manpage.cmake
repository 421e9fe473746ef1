# SPDX-License-Identifier: Apache-2.0
# manpage.cmake: writes a binary's manual page (section 1, gzipped) from its
# own --help, so the page cannot drift from the options it has.
#   cmake -DBIN=path -DNAME=prog -DDESC="one line" -DVERSION=x.y.z -DDATE=YYYY-MM-DD
#         -DOUT=dir/prog.1.gz -P manpage.cmake
# Run at build time by cmake/install.cmake; the pages go to share/man/man1.
# (smpost-token prints its usage on stderr)
execute_process(COMMAND ${BIN} --help OUTPUT_VARIABLE help ERROR_VARIABLE help RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR help STREQUAL "")
  message(FATAL_ERROR "${BIN} --help failed (${rc}): ${help}")
endif()
set(settings "")
if(help MATCHES "environment variable")
  set(settings "Every setting is an environment variable with a command-line override;
the flag wins.
")
endif()
# roff: a backslash is \e, a hyphen in an option is \-, and a line may not
# start with a control character (. or ')
function(roff_escape in out)
  string(REPLACE "\\" "\\e" s "${in}")
  string(REPLACE "-" "\\-" s "${s}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" s "${s}")
  set(${out} "${s}" PARENT_SCOPE)
endfunction()
roff_escape("${help}" help_roff)
roff_escape("${NAME}" name_roff)
roff_escape("${DESC}" desc_roff)
string(TOUPPER "${NAME}" title)
# the services' settings file under systemd (cmake/install.cmake)
set(files "")
if(NAME STREQUAL "command-api" OR NAME STREQUAL "query-api")
  set(files ".SH FILES
.TP
.I /etc/smpost/${name_roff}.env
the settings of the systemd units smpost\\-${name_roff}.service and
smpost\\-${name_roff}@.service
")
endif()
file(WRITE ${OUT}.tmp
".TH ${title} 1 \"${DATE}\" \"smpost ${VERSION}\" \"smpost\"
.SH NAME
${name_roff} \\- ${desc_roff}
.SH SYNOPSIS
.B ${name_roff}
[\\fIOPTIONS\\fR]
.SH DESCRIPTION
.B ${name_roff}
${desc_roff}.
The text below is the output of
.BR \"${name_roff} \\-\\-help\" .
${settings}.PP
.nf
${help_roff}.fi
${files}.SH SEE ALSO
The operations guide, /usr/share/doc/smpost/operations.md,
and the HTTP API, /usr/share/doc/smpost/api.md.
")
file(REMOVE ${OUT})
get_filename_component(dir ${OUT} DIRECTORY)
get_filename_component(base ${OUT} NAME_WLE)
file(RENAME ${OUT}.tmp ${dir}/${base})
execute_process(COMMAND gzip -9nf ${dir}/${base} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gzip ${dir}/${base} failed")
endif()
