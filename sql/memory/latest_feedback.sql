-- People's latest verdict (useful | noise) on each subject: kind, metric and slice.
select kind, metric, dimension, member, feedback
from memory
where feedback is not null
qualify row_number() over (partition by kind, metric, dimension, member order by recorded_at desc) = 1
