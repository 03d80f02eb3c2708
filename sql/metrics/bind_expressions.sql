-- Binds expressions against a model without reading a row: fails when one does not fit the model.
select {{ expressions }} from {{ model }} limit 0
