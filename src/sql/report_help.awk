# Writes tenant_guard._report_help(): the help text of every lint rule and
# attack-grid vector, taken from the documentation, so report() shows each
# finding with the fix the docs give. Run by the Makefile on docs/lint.md and
# docs/attack-grid.md; the output goes into the upgrade script.
#
# docs/lint.md: a rule's help is its bullet, "- **TG001**: text" (or
# "- **TG007 / TG008**: text" for two rules), with its continuation lines
# (indented by two blanks).
# docs/attack-grid.md: a vector's help is its table row, "| `vector` | a | b |",
# each cell labelled with the header of its column ("what it tries: a; leak
# when: b").

function flush_rule(   n, i, codes) {
	if (rule_codes != "") {
		n = split(rule_codes, codes, " / ")
		for (i = 1; i <= n; i++) emit("rule", codes[i], rule_text)
	}
	rule_codes = ""; rule_text = ""
}

function emit(kind, id, text) {
	gsub(/^[ \t]+|[ \t]+$/, "", text)
	if (index(text, "$tg_help$") > 0) {
		print "report_help.awk: the help of " id " contains the quote tag" > "/dev/stderr"
		exit 1
	}
	if (seen[kind, id]++) return
	printf "%s    ('%s', '%s', $tg_help$%s$tg_help$)", sep, kind, id, text
	sep = ",\n"
}

function cells(line, out,   n, i) {
	gsub(/\\\|/, "\001", line)          # an escaped pipe inside a cell
	sub(/^\|[ ]*/, "", line); sub(/[ ]*\|[ ]*$/, "", line)
	n = split(line, out, /[ ]*\|[ ]*/)
	for (i = 1; i <= n; i++) gsub(/\001/, "|", out[i])
	return n
}

BEGIN {
	print "CREATE FUNCTION tenant_guard._report_help()"
	print "RETURNS TABLE (kind text, id text, help text)"
	print "LANGUAGE sql IMMUTABLE PARALLEL SAFE"
	print "SET search_path = pg_catalog, pg_temp"
	print "AS $tg_report_help$"
	print "SELECT h.kind, h.id, h.help FROM (VALUES"
	sep = ""
}

FNR == 1 { flush_rule(); file = FILENAME; sub(/.*\//, "", file) }

file == "lint.md" {
	if (match($0, /^- \*\*TG[0-9]+( \/ TG[0-9]+)*\*\*: /)) {
		flush_rule()
		rule_codes = substr($0, 5, RLENGTH - 8)
		rule_text = substr($0, RLENGTH + 1)
		next
	}
	if (rule_codes != "" && $0 ~ /^  [^ ]/) { rule_text = rule_text " " substr($0, 3); next }
	flush_rule()
	next
}

file == "attack-grid.md" {
	if ($0 ~ /^\| *vector *\|/) { nh = cells($0, header); next }
	if (nh > 0 && match($0, /^\| `[a-z_]+` \|/)) {
		n = cells($0, c)
		id = c[1]; gsub(/`/, "", id)
		text = ""
		for (i = 2; i <= n && i <= nh; i++) text = text (i > 2 ? "; " : "") header[i] ": " c[i]
		emit("vector", id, text)
		next
	}
	if ($0 !~ /^\|/) nh = 0
}

END {
	flush_rule()
	print ""
	print ") AS h(kind, id, help)"
	print "$tg_report_help$;"
	print "COMMENT ON FUNCTION tenant_guard._report_help() IS"
	print "    'Internal: the help text of each lint rule and attack-grid vector, from docs/lint.md and docs/attack-grid.md.';"
	print "REVOKE ALL ON FUNCTION tenant_guard._report_help() FROM PUBLIC;"
}
