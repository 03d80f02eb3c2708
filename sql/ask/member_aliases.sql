-- Each alias with the member and dimension it names.
select alias, member, dimension
from member_aliases
