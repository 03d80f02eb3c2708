-- A metric's definition is the name of the file in metrics/ that declares it, not the file's path on this machine:
-- the analyst reads the metrics table, and a path would show where the project lives.
update metrics set definition = regexp_extract(definition, '[^/\\]+$') where definition similar to '.*[/\\].*';
