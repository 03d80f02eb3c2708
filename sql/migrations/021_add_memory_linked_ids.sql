-- the other memory items that are one story with this one: changes of the same slice over the same days (orders
-- and revenue down in DE on one day), changes one member carries, a batch held back and the drop in its days
alter table memory add column if not exists linked_ids varchar[];
