"""indexes on brand_id alone dropped where another index of the table leads with brand_id
(it serves every lookup by brand and the brand's cascading delete; the single one only cost
every write)

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-06 13:00:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None

# (table, index) of every index dropped
DROPPED = [
    ("campaign", "ix_campaign_brand_id"),
    ("campaign_segment", "ix_campaign_segment_brand_id"),
    ("coupon", "ix_coupon_brand_id"),
    ("coupon_issue_batch", "ix_coupon_issue_batch_brand_id"),
    ("coupon_mall_order", "ix_coupon_mall_order_brand_id"),
    ("coupon_partner_code", "ix_coupon_partner_code_brand_id"),
    ("coupon_redemption", "ix_coupon_redemption_brand_id"),
    ("coupon_stock_entry", "ix_coupon_stock_entry_brand_id"),
    ("export_file", "ix_export_file_brand_id"),
    ("game_campaign", "ix_game_campaign_brand_id"),
    ("game_draw", "ix_game_draw_brand_id"),
    ("game_extra_play", "ix_game_extra_play_brand_id"),
    ("guide_account", "ix_guide_account_brand_id"),
    ("guide_binding", "ix_guide_binding_brand_id"),
    ("guide_binding_event", "ix_guide_binding_event_brand_id"),
    ("guide_commission_entry", "ix_guide_commission_entry_brand_id"),
    ("guide_commission_line", "ix_guide_commission_line_brand_id"),
    ("guide_commission_rule", "ix_guide_commission_rule_brand_id"),
    ("guide_commission_statement", "ix_guide_commission_statement_brand_id"),
    ("guide_commission_tier", "ix_guide_commission_tier_brand_id"),
    ("guide_material", "ix_guide_material_brand_id"),
    ("guide_order_attribution", "ix_guide_order_attribution_brand_id"),
    ("guide_payout", "ix_guide_payout_brand_id"),
    ("guide_payout_event", "ix_guide_payout_event_brand_id"),
    ("guide_performance_line", "ix_guide_performance_line_brand_id"),
    ("guide_profile", "ix_guide_profile_brand_id"),
    ("guide_sales_day", "ix_guide_sales_day_brand_id"),
    ("guide_shop_item", "ix_guide_shop_item_brand_id"),
    ("guide_target", "ix_guide_target_brand_id"),
    ("guide_task", "ix_guide_task_brand_id"),
    ("guide_task_guide", "ix_guide_task_guide_brand_id"),
    ("guide_task_send", "ix_guide_task_send_brand_id"),
    ("guide_visit", "ix_guide_visit_brand_id"),
    ("member_activity", "ix_member_activity_brand_id"),
    ("member_card_code", "ix_member_card_code_brand_id"),
    ("member_qr_code", "ix_member_qr_code_brand_id"),
    ("member_qr_event", "ix_member_qr_event_brand_id"),
    ("points_account", "ix_points_account_brand_id"),
    ("points_entry", "ix_points_entry_brand_id"),
    ("points_lot", "ix_points_lot_brand_id"),
    ("shop_after_sale", "ix_shop_after_sale_brand_id"),
    ("shop_category", "ix_shop_category_brand_id"),
    ("shop_member_facts", "ix_shop_member_facts_brand_id"),
    ("shop_order", "ix_shop_order_brand_id"),
    ("shop_pay_notify_log", "ix_shop_pay_notify_log_brand_id"),
    ("shop_payment", "ix_shop_payment_brand_id"),
    ("shop_product", "ix_shop_product_brand_id"),
    ("shop_reconciliation_issue", "ix_shop_reconciliation_issue_brand_id"),
    ("shop_refund", "ix_shop_refund_brand_id"),
    ("shop_sales_day_rollup", "ix_shop_sales_day_rollup_brand_id"),
    ("shop_sku", "ix_shop_sku_brand_id"),
    ("shop_stock_entry", "ix_shop_stock_entry_brand_id"),
    ("staff", "ix_staff_brand_id"),
    ("store", "ix_store_brand_id"),
    ("subscribe_consent", "ix_subscribe_consent_brand_id"),
    ("subscribe_consent_event", "ix_subscribe_consent_event_brand_id"),
    ("subscribe_consent_use", "ix_subscribe_consent_use_brand_id"),
    ("tag_definition", "ix_tag_definition_brand_id"),
    ("tier_level", "ix_tier_level_brand_id"),
    ("wechat_inbound", "ix_wechat_inbound_brand_id"),
    ("wechat_keyword", "ix_wechat_keyword_brand_id"),
]


def upgrade():
    for table, index in DROPPED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(index)


def downgrade():
    for table, index in DROPPED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(index, ["brand_id"], unique=False)
