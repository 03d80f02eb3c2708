-- Memory items, every column, to a file. COPY takes no parameters: the status and the path are quoted literals.
copy (
    select * from memory
    where {{ status }} = 'all' or status = {{ status }}
    order by recorded_at, id
) to {{ path }} ({{ format }})
