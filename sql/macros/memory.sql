-- Most severe first: the order people read memory and the brief in.
create or replace macro severity_rank(severity) as
    case severity when 'critical' then 0 when 'warning' then 1 else 2 end;
