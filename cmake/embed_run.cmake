# SPDX-License-Identifier: Apache-2.0
# Script mode: turns IN into a C array SYM written to OUT.
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE "${OUT}" "/* generated from ${IN}; do not edit */\nconst char ${SYM}[] = {${bytes} 0x00};\n")
