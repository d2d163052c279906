"""Home Credit data: the synthetic generator, the CSV import, the per-client features."""

# the eight CSV files of the Kaggle download, in the Kaggle order
KAGGLE_FILES = (
    "application_train.csv",
    "application_test.csv",
    "bureau.csv",
    "bureau_balance.csv",
    "previous_application.csv",
    "POS_CASH_balance.csv",
    "installments_payments.csv",
    "credit_card_balance.csv",
)
